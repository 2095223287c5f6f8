//! Packet loss fractions from quinn's cumulative counters (`PathStats::lost_packets` and
//! `sent_packets`), each over a window long enough to mean something: 2 % random loss over
//! 20 packets reads as 15 % one time in a hundred, over 50 packets almost never. The
//! losses quinn declares just after a silence are the silence's, not the path's: none is
//! sampled for `SILENCE_GRACE_US` after one.

/// A sample covers at least this long (libwebrtc reacts to loss about twice a second)...
const MIN_WINDOW_US: u64 = 500_000;
/// ...and at least this many packets sent (libwebrtc asks for 20; more, so random loss
/// stays below the cut level).
const MIN_PACKETS: u64 = 50;
/// Losses declared this long after a silence belong to it.
const SILENCE_GRACE_US: u64 = 1_000_000;

/// Where the current window started.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    at_us: u64,
    lost: u64,
    sent: u64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct LossSampler {
    baseline: Option<Baseline>,
    /// When the last silence was over (or seen).
    silence_us: Option<u64>,
}

impl LossSampler {
    /// Takes the counters; returns the loss fraction (0 to 1) once the window since the
    /// last sample is long enough, and starts the next window.
    pub fn sample(&mut self, now_us: u64, lost_packets: u64, sent_packets: u64) -> Option<f64> {
        if self.just_after_silence(now_us) {
            self.restart();
            return None;
        }
        let here = Baseline { at_us: now_us, lost: lost_packets, sent: sent_packets };
        let Some(baseline) = self.baseline else {
            self.baseline = Some(here);
            return None;
        };
        // Counters that went back belong to another connection: start over.
        if lost_packets < baseline.lost || sent_packets < baseline.sent {
            self.baseline = Some(here);
            return None;
        }
        let sent = sent_packets - baseline.sent;
        if now_us.saturating_sub(baseline.at_us) < MIN_WINDOW_US || sent < MIN_PACKETS {
            return None;
        }
        self.baseline = Some(here);
        Some(((lost_packets - baseline.lost) as f64 / sent as f64).min(1.0))
    }

    /// A silence at `now_us` (the peer got nothing, or the link just came back): the window
    /// so far is forgotten, and the losses of the next `SILENCE_GRACE_US` are not sampled.
    pub fn silence(&mut self, now_us: u64) {
        self.silence_us = Some(now_us);
        self.restart();
    }

    /// Whether `now_us` is within `SILENCE_GRACE_US` of the last silence.
    pub fn just_after_silence(&self, now_us: u64) -> bool {
        self.silence_us.is_some_and(|at| now_us < at.saturating_add(SILENCE_GRACE_US))
    }

    /// Forgets the window so far.
    fn restart(&mut self) {
        self.baseline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_need_both_time_and_packets() {
        let mut sampler = LossSampler::default();
        assert_eq!(sampler.sample(0, 0, 0), None);
        assert_eq!(sampler.sample(400_000, 10, 100), None, "too soon");
        assert_eq!(sampler.sample(600_000, 10, 100), Some(0.1));
        assert_eq!(sampler.sample(700_000, 1, 40), None, "counters went back: start over");
        assert_eq!(sampler.sample(1_300_000, 2, 80), None, "too few packets");
        assert_eq!(sampler.sample(1_400_000, 6, 140), Some(0.05));
        assert_eq!(sampler.sample(2_000_000, 6, 240), Some(0.0));
    }

    #[test]
    fn a_restart_forgets_the_window() {
        let mut sampler = LossSampler::default();
        sampler.sample(0, 0, 0);
        sampler.restart();
        assert_eq!(sampler.sample(100_000, 90, 100), None);
        assert_eq!(sampler.sample(700_000, 91, 200), Some(0.01));
    }

    #[test]
    fn the_losses_after_a_silence_are_not_sampled() {
        let mut sampler = LossSampler::default();
        sampler.sample(0, 0, 0);
        sampler.silence(1_000_000);
        assert_eq!(sampler.sample(1_600_000, 90, 100), None);
        assert_eq!(sampler.sample(1_900_000, 95, 200), None, "still within the grace");
        assert_eq!(sampler.sample(2_000_000, 95, 200), None, "the window starts afresh");
        assert_eq!(sampler.sample(2_600_000, 96, 300), Some(0.01));
    }

    #[test]
    fn more_lost_than_sent_is_total_loss() {
        let mut sampler = LossSampler::default();
        sampler.sample(0, 0, 0);
        assert_eq!(sampler.sample(1_000_000, 500, 100), Some(1.0));
    }
}
