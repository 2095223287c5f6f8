//! `FramePacer`: which captured pictures to encode so the encoder runs at a lower frame rate
//! than the capture. Pure state fed with capture times (microseconds), so it is tested in
//! simulated time. The rule is libwebrtc's `FramerateController`: keep a picture once its
//! time reaches the next due time, then move the due time on by exactly one interval, so the
//! rate holds on average whatever the ratio (30 to 20 fps keeps two pictures in three).

/// Decides picture by picture whether to keep it at a given frame rate.
#[derive(Debug, Default)]
pub struct FramePacer {
    /// When the next picture is due, microseconds on the capture clock.
    next_due_us: Option<u64>,
}

impl FramePacer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to encode the picture captured at `capture_us` when `fps` pictures a second
    /// are wanted. A source slower than `fps` has every picture kept.
    pub fn keep(&mut self, capture_us: u64, fps: u32) -> bool {
        let interval_us = 1_000_000 / u64::from(fps.max(1));
        if let Some(due) = self.next_due_us {
            // A picture far from the schedule (a pause, a jump of the clock) starts it afresh.
            if due.abs_diff(capture_us) < 2 * interval_us {
                if capture_us < due {
                    return false;
                }
                self.next_due_us = Some(due + interval_us);
                return true;
            }
        }
        // Half an interval ahead, so pictures a little early or late land on the right side.
        self.next_due_us = Some(capture_us + interval_us / 2);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `seconds` of pictures captured at `source_fps` (with `jitter_us` of
    /// alternating error) the pacer keeps at `fps`.
    fn kept(source_fps: u64, fps: u32, seconds: u64, jitter_us: i64) -> usize {
        let mut pacer = FramePacer::new();
        (0..source_fps * seconds)
            .filter(|&i| {
                let error = if i % 2 == 0 { jitter_us } else { -jitter_us };
                let t = (1_000_000 + i * 1_000_000 / source_fps) as i64 + error;
                pacer.keep(t as u64, fps)
            })
            .count()
    }

    /// `count` is `expected`, give or take the first picture (always kept).
    fn about(count: usize, expected: usize) -> bool {
        count.abs_diff(expected) <= 1
    }

    #[test]
    fn the_kept_rate_is_the_asked_rate() {
        for (source, fps) in [(30, 30), (30, 15), (30, 20), (30, 10), (60, 24), (30, 1)] {
            let count = kept(source, fps, 10, 0);
            assert!(about(count, fps as usize * 10), "{source} to {fps} fps: {count} in 10 s");
        }
        // A slower source is passed through.
        assert_eq!(kept(15, 30, 10, 0), 150);
    }

    #[test]
    fn capture_jitter_does_not_change_the_rate() {
        assert_eq!(kept(30, 30, 10, 8_000), 300);
        assert!(about(kept(30, 15, 10, 8_000), 150));
        assert!(about(kept(30, 20, 10, 8_000), 200));
    }

    #[test]
    fn a_pause_restarts_the_schedule_instead_of_bursting() {
        let mut pacer = FramePacer::new();
        assert!(pacer.keep(0, 10));
        assert!(!pacer.keep(33_000, 10));
        assert!(pacer.keep(100_000, 10));
        // Five seconds without pictures (camera off): the next one is kept, its follower is not.
        assert!(pacer.keep(5_100_000, 10));
        assert!(!pacer.keep(5_133_000, 10));
        assert!(pacer.keep(5_200_000, 10));
    }
}
