//! Lip sync: the audio playout publishes how long its sound takes from capture to the
//! speaker, and the video decoder holds each picture until the same time after its own
//! capture, so a face moves with the sound it made. Video is usually the faster path
//! (no jitter buffer, no device buffer); when it is the slower one there is nothing to
//! hold and the offset shows in the figures.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A picture is never held longer than this, whatever the audio path claims: the decoder
/// holds pictures in turn, and its input queue (8 pictures) must not overflow meanwhile.
pub const MAX_HOLD: Duration = Duration::from_millis(200);

/// The audio path's current capture-to-speaker delay, shared by both paths.
#[derive(Debug, Default)]
pub struct LipSync {
    /// Microseconds; 0 while no sound is playing.
    audio_delay_us: AtomicU64,
}

impl LipSync {
    pub fn new() -> Self {
        Self::default()
    }

    /// The audio playout's delay now (`None`: no sound is playing, do not hold pictures).
    pub fn set_audio_delay(&self, delay_us: Option<u64>) {
        self.audio_delay_us.store(delay_us.unwrap_or(0), Relaxed);
    }

    pub fn audio_delay_us(&self) -> Option<u64> {
        match self.audio_delay_us.load(Relaxed) {
            0 => None,
            us => Some(us),
        }
    }

    /// How long to hold a picture captured at `captured_us` (local clock) at `now_us`.
    pub fn hold(&self, captured_us: i64, now_us: u64) -> Option<Duration> {
        let due = captured_us.saturating_add(self.audio_delay_us()? as i64);
        let wait = due.saturating_sub(now_us as i64);
        (wait > 0).then(|| Duration::from_micros(wait as u64).min(MAX_HOLD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_wait_for_their_sound() {
        let sync = LipSync::new();
        assert_eq!(sync.hold(1_000_000, 1_010_000), None, "no sound: show at once");
        sync.set_audio_delay(Some(45_000));
        // Decoded 10 ms after capture: held 35 ms more.
        assert_eq!(sync.hold(1_000_000, 1_010_000), Some(Duration::from_millis(35)));
        // Already later than the sound: shown at once.
        assert_eq!(sync.hold(1_000_000, 1_050_000), None);
        sync.set_audio_delay(Some(5_000_000));
        assert_eq!(sync.hold(1_000_000, 1_010_000), Some(MAX_HOLD));
        sync.set_audio_delay(None);
        assert_eq!(sync.audio_delay_us(), None);
    }
}
