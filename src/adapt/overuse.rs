//! Overuse detection on the receiver's delay trend, with GCC's adaptive threshold: the
//! trend, scaled as GCC scales it, is compared with a threshold that follows the trend's
//! own noise, quickly down and slowly up, so a jittery path does not read as a congested
//! one and a clean one reacts to small queues.

/// GCC multiplies the slope by 4 and by the number of delay samples, which saturates at
/// 60 (two seconds at 30 fps): the saturated gain, so a slope of 0.052 meets the initial
/// threshold.
const TREND_GAIN_MS: f64 = 4.0 * 60.0;
/// GCC's starting threshold, ms.
const INITIAL_THRESHOLD_MS: f64 = 12.5;
/// GCC's bounds on the threshold, ms.
const MIN_THRESHOLD_MS: f64 = 6.0;
const MAX_THRESHOLD_MS: f64 = 600.0;
/// GCC's adaptation rates, per ms: the threshold rises slowly toward a trend above it
/// (so real congestion is not learned as noise) and falls fast toward one below it.
const THRESHOLD_UP_PER_MS: f64 = 0.0087;
const THRESHOLD_DOWN_PER_MS: f64 = 0.039;
/// A trend this far above the threshold is a real event (a capacity drop), not noise to
/// adapt to (GCC's 15 ms).
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// At most this much time counts in one adaptation step (GCC's 100 ms).
const MAX_ADAPT_STEP_MS: f64 = 100.0;
/// Reports in a row above the threshold before overuse is declared: GCC asks for more
/// than one sample, so a single late frame is not a queue.
const REPORTS_TO_OVERUSE: u32 = 2;

/// What the delay trend says about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// The delay is steady.
    Normal,
    /// The delay keeps growing: a queue is building.
    Overuse,
    /// The delay is falling: a queue is draining.
    Underuse,
}

/// See the module documentation.
#[derive(Debug)]
pub struct OveruseDetector {
    threshold_ms: f64,
    reports_above: u32,
    last_update_us: Option<u64>,
}

impl Default for OveruseDetector {
    fn default() -> Self {
        Self { threshold_ms: INITIAL_THRESHOLD_MS, reports_above: 0, last_update_us: None }
    }
}

impl OveruseDetector {
    /// Classifies one report's trend (µs of delay per second, as `ReceiverReport` has it)
    /// and adapts the threshold.
    pub fn update(&mut self, now_us: u64, delay_trend_us_per_s: i32) -> Usage {
        let modified_ms = f64::from(delay_trend_us_per_s) / 1e6 * TREND_GAIN_MS;
        let usage = if modified_ms > self.threshold_ms {
            self.reports_above += 1;
            if self.reports_above >= REPORTS_TO_OVERUSE { Usage::Overuse } else { Usage::Normal }
        } else {
            self.reports_above = 0;
            if modified_ms < -self.threshold_ms { Usage::Underuse } else { Usage::Normal }
        };
        self.adapt_threshold(now_us, modified_ms.abs());
        usage
    }

    /// GCC's threshold update, in closed form so a step of 100 ms cannot overshoot.
    fn adapt_threshold(&mut self, now_us: u64, magnitude_ms: f64) {
        let elapsed_ms = self.last_update_us.map_or(0.0, |last| now_us.saturating_sub(last) as f64 / 1000.0);
        self.last_update_us = Some(now_us);
        if magnitude_ms > self.threshold_ms + MAX_ADAPT_OFFSET_MS {
            return;
        }
        let rate = if magnitude_ms < self.threshold_ms { THRESHOLD_DOWN_PER_MS } else { THRESHOLD_UP_PER_MS };
        let weight = 1.0 - (-rate * elapsed_ms.min(MAX_ADAPT_STEP_MS)).exp();
        self.threshold_ms += weight * (magnitude_ms - self.threshold_ms);
        self.threshold_ms = self.threshold_ms.clamp(MIN_THRESHOLD_MS, MAX_THRESHOLD_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT_US: u64 = 100_000;

    #[test]
    fn a_steady_delay_is_normal() {
        let mut detector = OveruseDetector::default();
        for i in 0..50 {
            assert_eq!(detector.update(i * REPORT_US, 0), Usage::Normal);
        }
    }

    #[test]
    fn a_growing_queue_is_overuse_on_the_second_report() {
        let mut detector = OveruseDetector::default();
        // 10 % too fast: 100 ms of delay every second.
        assert_eq!(detector.update(0, 100_000), Usage::Normal);
        assert_eq!(detector.update(REPORT_US, 100_000), Usage::Overuse);
        assert_eq!(detector.update(2 * REPORT_US, 100_000), Usage::Overuse);
        assert_eq!(detector.update(3 * REPORT_US, -100_000), Usage::Underuse);
    }

    #[test]
    fn the_threshold_follows_the_noise_but_not_a_spike() {
        let mut detector = OveruseDetector::default();
        // A trend swinging +-0.06 (14.4 ms scaled): the threshold rises toward it.
        for i in 0..30 {
            detector.update(i * REPORT_US, if i % 2 == 0 { 60_000 } else { -60_000 });
        }
        assert!((14.0..14.4).contains(&detector.threshold_ms), "threshold {}", detector.threshold_ms);
        // Calm: it falls to its floor, so a small queue shows again.
        for i in 30..60 {
            detector.update(i * REPORT_US, 0);
        }
        assert!(detector.threshold_ms < 6.1, "threshold {}", detector.threshold_ms);
        // A capacity drop (0.4: 96 ms scaled) is not learned as noise.
        detector.update(60 * REPORT_US, 400_000);
        assert!(detector.threshold_ms < 6.1, "threshold {}", detector.threshold_ms);
        assert_eq!(detector.update(61 * REPORT_US, 400_000), Usage::Overuse);
    }

    #[test]
    fn the_threshold_stays_within_bounds() {
        let mut detector = OveruseDetector::default();
        for i in 0..1000 {
            detector.update(i * REPORT_US, if i % 3 == 0 { i32::MAX } else { i32::MIN / 2 });
            assert!((MIN_THRESHOLD_MS..=MAX_THRESHOLD_MS).contains(&detector.threshold_ms));
        }
    }
}
