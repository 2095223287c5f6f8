//! Lip sync: the audio playout publishes how long its sound takes from capture to the
//! speaker, and the video decoder holds each picture until the same time after its own
//! capture, so a face moves with the sound it made. Video is usually the faster path
//! (no jitter buffer, no device buffer); when it is the slower one there is nothing to
//! hold and the offset shows in the figures.
//!
//! The delay pictures are held to follows the sound's down at once, but up by at most
//! 80 ms a second, as WebRTC's stream synchronization moves it (`kMaxChangeMs` per
//! one-second update). A burst of delay in the sound, such as a queue that fills when the
//! link drops and drains a second later, which the jitter buffer then remembers for
//! another 2 s, does not hold every picture back with it. A lasting change is met within a
//! second or two.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A picture is never held longer than this, whatever the audio path claims: the decoder
/// holds pictures in turn, and its input queue (8 pictures) must not overflow meanwhile.
pub const MAX_HOLD: Duration = Duration::from_millis(200);
/// The delay pictures are held to grows by at most this much per second.
pub const MAX_RISE_US_PER_S: u64 = 80_000;

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
}

/// The decoder's side (pure, time as an argument): the delay it holds pictures to.
#[derive(Debug, Default)]
pub struct PictureDelay {
    delay_us: u64,
    updated_us: Option<u64>,
}

impl PictureDelay {
    /// How long to hold a picture captured at `captured_us` (local clock) at `now_us`, when
    /// the sound takes `audio_delay_us` (`None`: no sound is playing, show at once).
    pub fn hold(&mut self, audio_delay_us: Option<u64>, captured_us: i64, now_us: u64) -> Option<Duration> {
        let since_us = self.updated_us.map_or(0, |at| now_us.saturating_sub(at));
        self.updated_us = Some(now_us);
        let rise_us =
            u64::try_from(u128::from(since_us) * u128::from(MAX_RISE_US_PER_S) / 1_000_000).unwrap_or(u64::MAX);
        self.delay_us = audio_delay_us.unwrap_or(0).min(self.delay_us.saturating_add(rise_us));
        if self.delay_us == 0 {
            return None;
        }
        let due = captured_us.saturating_add(self.delay_us as i64);
        let wait = due.saturating_sub(now_us as i64);
        (wait > 0).then(|| Duration::from_micros(wait as u64).min(MAX_HOLD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    /// A picture every 33 ms from `from_ms` to `to_ms`, each decoded 10 ms after capture,
    /// with the sound's delay `audio(ms)`; the hold of the last one.
    fn held(
        delay: &mut PictureDelay,
        from_ms: u64,
        to_ms: u64,
        audio: impl Fn(u64) -> Option<u64>,
    ) -> Option<Duration> {
        let mut last = None;
        for at_ms in (from_ms..to_ms).step_by(33) {
            let now = at_ms * MS + 10 * MS;
            last = delay.hold(audio(at_ms), (at_ms * MS) as i64, now);
        }
        last
    }

    #[test]
    fn pictures_wait_for_their_sound_once_the_delay_has_grown_to_it() {
        let mut delay = PictureDelay::default();
        assert_eq!(delay.hold(None, 1_000_000, 1_010_000), None, "no sound: show at once");
        // 45 ms of sound delay, met within a second at 80 ms a second: then held 35 ms.
        assert_eq!(held(&mut delay, 1_000, 2_000, |_| Some(45 * MS)), Some(Duration::from_millis(35)));
        // Already later than the sound: shown at once.
        assert_eq!(delay.hold(Some(45 * MS), 2_000_000, 2_050_000), None);
        // Never held longer than MAX_HOLD, however long the sound takes.
        assert_eq!(held(&mut delay, 2_000, 10_000, |_| Some(5_000 * MS)), Some(MAX_HOLD));
        assert_eq!(delay.hold(None, 10_000_000, 10_010_000), None);
    }

    #[test]
    fn a_burst_of_delay_in_the_sound_does_not_hold_the_pictures_with_it() {
        let mut delay = PictureDelay::default();
        held(&mut delay, 0, 3_000, |_| Some(60 * MS));
        // The sound's delay jumps to 260 ms for 2 s: pictures are held 2.64 ms more at each
        // picture 33 ms apart (80 ms a second; 2.4 ms for the first, 30 ms after the last
        // picture at 2.97 s), not 200 ms more at once.
        let burst = |at_ms: u64| Some(if (3_000..5_000).contains(&at_ms) { 260 * MS } else { 60 * MS });
        assert_eq!(
            held(&mut delay, 3_000, 3_100, burst),
            Some(Duration::from_micros(60_000 + 2_400 + 3 * 2_640 - 10_000))
        );
        let worst = (3_132..5_000).step_by(33).filter_map(|at_ms| held(&mut delay, at_ms, at_ms + 1, burst)).max();
        let worst = worst.expect("held");
        assert!(worst > Duration::from_millis(150) && worst <= Duration::from_millis(60 + 160 - 10), "{worst:?}");
        // It falls back at once when the sound does.
        assert_eq!(held(&mut delay, 5_000, 5_100, burst), Some(Duration::from_millis(50)));
    }
}
