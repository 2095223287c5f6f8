//! The test tone: a sine of a chosen frequency at -12 dBFS, a pure function of the sample
//! index, standing in for a microphone.

use super::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};

/// Default tone frequency (concert A).
pub const DEFAULT_TONE_HZ: f32 = 440.0;
/// Peak amplitude: -12 dBFS, loud enough to measure and far from clipping.
pub const TONE_AMPLITUDE: f32 = 0.25;

/// A sine generator that remembers where it is.
#[derive(Debug, Clone)]
pub struct Tone {
    hz: f32,
    next_sample: u64,
}

impl Tone {
    pub fn new(hz: f32) -> Self {
        Self { hz, next_sample: 0 }
    }

    /// The next 10 ms.
    pub fn next_frame(&mut self) -> AudioFrame {
        let mut frame = [0.0; FRAME_SAMPLES];
        for (i, sample) in frame.iter_mut().enumerate() {
            // The phase is reduced to one period in f64 first, so it never loses precision.
            let n = self.next_sample + i as u64;
            let cycles = (n as f64 * f64::from(self.hz) / f64::from(SAMPLE_RATE)).fract();
            *sample = TONE_AMPLITUDE * (cycles * std::f64::consts::TAU).sin() as f32;
        }
        self.next_sample += FRAME_SAMPLES as u64;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::analysis::{dominant_frequency, rms_dbfs};

    #[test]
    fn the_tone_has_its_frequency_and_level() {
        let mut tone = Tone::new(660.0);
        let samples: Vec<f32> = (0..20).flat_map(|_| tone.next_frame()).collect();
        let hz = dominant_frequency(&samples, SAMPLE_RATE);
        assert!((hz - 660.0).abs() < 5.0, "{hz}");
        // A sine's RMS is its peak over sqrt(2): -12 dBFS peak is -15 dBFS RMS.
        let level = rms_dbfs(&samples);
        assert!((level + 15.05).abs() < 0.1, "{level}");
    }
}
