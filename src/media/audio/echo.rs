//! Echo cancellation, so two people can talk without headsets: WebRTC's AEC3 (through
//! `sonora`, its pure-Rust port) learns how the peer's sound, played by this speaker,
//! comes back into this microphone, and takes it out before the microphone's frame is
//! encoded. The playout thread shows it every frame it plays ("far end"); the sender
//! thread passes every microphone frame through it ("near end").
//!
//! AEC3 always listens and learns, but its output replaces the microphone's only while
//! `EchoPathDetector` has not found the far end missing from the microphone: with no echo
//! to take out, AEC3 would only take from a voice talking at the same time as the other.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sonora::config::EchoCanceller as Aec3;
use sonora::{AudioProcessing, Config, StreamConfig};

use super::echo_path::{EchoPath, EchoPathDetector};
use super::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};
use crate::net::clock::now_us;

/// One call's echo canceller, shared by the sender and playout threads.
pub struct EchoCanceller {
    apm: Mutex<AudioProcessing>,
    /// Whether there is an echo at all; its verdict is what the last microphone frame
    /// was given.
    path: Mutex<EchoPathDetector>,
    /// How long the last far-end frame took from here to the speaker, µs.
    render_delay_us: AtomicU64,
}

impl Default for EchoCanceller {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoCanceller {
    pub fn new() -> Self {
        let config = Config { echo_canceller: Some(Aec3::default()), ..Config::default() };
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        let apm = AudioProcessing::builder().config(config).capture_config(stream).render_config(stream).build();
        Self { apm: Mutex::new(apm), path: Mutex::new(EchoPathDetector::new()), render_delay_us: AtomicU64::new(0) }
    }

    /// A frame of the peer's sound on its way to the speaker, heard `delay_us` from now.
    pub fn far_end(&self, frame: &AudioFrame, delay_us: u64) {
        self.render_delay_us.store(delay_us, Relaxed);
        self.path.lock().unwrap_or_else(|e| e.into_inner()).far_end(frame);
        let mut out = [0.0; FRAME_SAMPLES];
        let mut apm = self.apm.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = apm.process_render_f32(&[frame], &mut [&mut out]) {
            tracing::debug!("echo canceller (far end): {e:?}");
        }
    }

    /// Takes the peer's sound out of a microphone frame whose first sample was captured at
    /// `capture_us`, if it comes back at all.
    pub fn near_end(&self, frame: &mut AudioFrame, capture_us: u64) {
        let capture_delay_us = now_us().saturating_sub(capture_us);
        let delay_ms = (self.render_delay_us.load(Relaxed) + capture_delay_us) / 1000;
        let input = *frame;
        let mut apm = self.apm.lock().unwrap_or_else(|e| e.into_inner());
        // Out of AEC3's range (0-500 ms) the delay is clamped, which it reports as an
        // error while still processing the frame.
        let _ = apm.set_stream_delay_ms(delay_ms.min(500) as i32);
        if let Err(e) = apm.process_capture_f32(&[&input], &mut [&mut *frame]) {
            tracing::debug!("echo canceller (near end): {e:?}");
            *frame = input;
        }
        drop(apm);
        let mut path = self.path.lock().unwrap_or_else(|e| e.into_inner());
        let (was, now) = (path.verdict(), path.near_end(&input));
        drop(path);
        if now != was {
            let action = if now == EchoPath::Absent { "the microphone passes untouched" } else { "cancelling" };
            tracing::info!("echo path {}: {action}", now.name());
        }
        // How much of the untouched microphone this frame gets: all or nothing, faded
        // across the frame when that changes.
        let (from, to) = (pass_weight(was), pass_weight(now));
        let cancelled = *frame;
        for (i, out) in frame.iter_mut().enumerate() {
            let pass = from + (to - from) * i as f32 / FRAME_SAMPLES as f32;
            *out = pass * input[i] + (1.0 - pass) * cancelled[i];
        }
    }

    /// What is known of the echo path, as of the last microphone frame.
    pub fn path(&self) -> EchoPath {
        self.path.lock().unwrap_or_else(|e| e.into_inner()).verdict()
    }
}

/// 1 where the microphone passes untouched, 0 where AEC3's output replaces it.
fn pass_weight(path: EchoPath) -> f32 {
    if path == EchoPath::Absent { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::analysis::rms_dbfs;
    use crate::media::audio::tone::Tone;
    use crate::media::audio::{FRAME_SAMPLES, FRAME_US};

    /// A voice-like sound: a buzz at `pitch` Hz rich in harmonics, in syllables whose
    /// envelope advances `syllable_step` radians a frame.
    fn voice(frame: u64, pitch: f32, syllable_step: f32) -> AudioFrame {
        let mut out = [0.0; FRAME_SAMPLES];
        let syllable = ((frame as f32 * syllable_step).sin() * 0.5 + 0.5).powi(2);
        for (i, s) in out.iter_mut().enumerate() {
            let t = (frame as usize * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
            let buzz: f32 = (1..12).map(|h| (t * pitch * h as f32 * std::f32::consts::TAU).sin() / h as f32).sum();
            *s = 0.2 * syllable * buzz;
        }
        out
    }

    /// Far-end "speech": a 150 Hz buzz.
    fn speech(frame: u64) -> AudioFrame {
        voice(frame, 150.0, 0.4)
    }

    #[test]
    fn with_no_echo_path_a_voice_talking_over_the_far_end_is_left_alone() {
        // Headphones: the far end plays and none of it reaches the microphone, where the
        // near end talks at the same time. AEC3 alone took this voice down by 30 dB for
        // its first 6 s.
        let aec = EchoCanceller::new();
        let (mut near_in, mut near_out) = (Vec::new(), Vec::new());
        for n in 0..300u64 {
            aec.far_end(&speech(n), 0);
            // A second voice, higher and at another syllable rate.
            let near = voice(n, 210.0, 0.33);
            let mut mic = near;
            aec.near_end(&mut mic, now_us() - FRAME_US);
            if n >= 100 {
                near_in.extend_from_slice(&near);
                near_out.extend_from_slice(&mic);
            }
        }
        assert_eq!(aec.path(), EchoPath::Absent);
        let change = rms_dbfs(&near_out) - rms_dbfs(&near_in);
        assert!(change.abs() <= 1.0, "the voice changed by {change:.1} dB");
    }

    #[test]
    fn the_far_end_coming_back_through_the_microphone_is_taken_out_and_the_near_end_kept() {
        let aec = EchoCanceller::new();
        let mut near = Tone::new(1000.0);
        // The echo: the far end, 30 ms later (3 frames), at half its level.
        let echo_frames = 3;
        let (mut echo_in, mut echo_out, mut near_in, mut near_out) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for n in 0..600u64 {
            let far = speech(n);
            aec.far_end(&far, 0);
            let echo = if n >= echo_frames { speech(n - echo_frames).map(|s| s * 0.5) } else { [0.0; FRAME_SAMPLES] };
            // First the echo alone, then the echo under the near end's own voice.
            let local = if n >= 400 { near.next_frame() } else { [0.0; FRAME_SAMPLES] };
            let mut mic = [0.0; FRAME_SAMPLES];
            for i in 0..FRAME_SAMPLES {
                mic[i] = echo[i] + local[i];
            }
            aec.near_end(&mut mic, now_us() - FRAME_US);
            if (200..400).contains(&n) {
                echo_in.extend_from_slice(&echo);
                echo_out.extend_from_slice(&mic);
            } else if n >= 500 {
                near_in.extend_from_slice(&local);
                near_out.extend_from_slice(&mic);
            }
        }
        let erle = rms_dbfs(&echo_in) - rms_dbfs(&echo_out);
        assert!(erle >= 20.0, "the echo came back only {erle:.1} dB quieter");
        let near_loss = rms_dbfs(&near_in) - rms_dbfs(&near_out);
        assert!(near_loss.abs() <= 6.0, "the near end's own voice changed by {near_loss:.1} dB");
    }
}
