//! Sample-rate conversion by linear interpolation, one sample at a time with no allocation,
//! so it can run inside a device callback: pushed (microphone rate to 48 kHz) or pulled
//! (48 kHz to the speaker's rate). Voice sits far below either Nyquist frequency, so
//! linear interpolation's small aliasing is inaudible next to the codec's own.

/// A streaming linear resampler between two rates.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// The two input samples the next output falls between, and where between them.
    a: f32,
    b: f32,
    frac: f64,
}

impl Resampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Self {
        Self { step: f64::from(from_hz) / f64::from(to_hz.max(1)), a: 0.0, b: 0.0, frac: 0.0 }
    }

    fn value(&self) -> f32 {
        self.a + (self.b - self.a) * self.frac as f32
    }

    /// Takes one input sample and hands out the output samples it completes.
    pub fn push(&mut self, input: f32, mut output: impl FnMut(f32)) {
        self.a = self.b;
        self.b = input;
        while self.frac < 1.0 {
            output(self.value());
            self.frac += self.step;
        }
        self.frac -= 1.0;
    }

    /// Makes one output sample, taking input samples from `next` as it needs them.
    pub fn pull(&mut self, mut next: impl FnMut() -> f32) -> f32 {
        while self.frac >= 1.0 {
            self.frac -= 1.0;
            self.a = self.b;
            self.b = next();
        }
        let v = self.value();
        self.frac += self.step;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::analysis::dominant_frequency;

    fn sine(hz: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 0.5).collect()
    }

    #[test]
    fn pushing_converts_rate_and_keeps_pitch() {
        for from in [44_100, 48_000, 16_000, 96_000] {
            let input = sine(440.0, from, from as usize);
            let mut r = Resampler::new(from, 48_000);
            let mut out = Vec::new();
            for &x in &input {
                r.push(x, |y| out.push(y));
            }
            assert!((out.len() as i64 - 48_000).abs() <= 1, "{from}: {}", out.len());
            assert!((dominant_frequency(&out, 48_000) - 440.0).abs() <= 1.0, "{from}");
        }
    }

    #[test]
    fn pulling_converts_rate_and_keeps_pitch() {
        for to in [44_100, 48_000, 22_050] {
            let input = sine(440.0, 48_000, 48_000);
            let mut it = input.iter().copied();
            let mut r = Resampler::new(48_000, to);
            let out: Vec<f32> = (0..to as usize - 2).map(|_| r.pull(|| it.next().unwrap_or(0.0))).collect();
            assert!(it.len() <= 10, "{to}: {} left", it.len());
            assert!((dominant_frequency(&out, to) - 440.0).abs() <= 1.0, "{to}");
        }
    }
}
