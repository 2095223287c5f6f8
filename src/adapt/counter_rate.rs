//! A rate from samples of a running byte count (what a transport has sent or received
//! since the connection started): kbit/s over about the last window, taken from the latest
//! sample at or before the window's start (or the oldest kept) to the newest.

use std::collections::VecDeque;

/// At most this many samples are kept: with one every 100 ms, more than any window here.
const MAX_SAMPLES: usize = 8;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct CounterRate {
    /// (time, the count by then), oldest first.
    samples: VecDeque<(u64, u64)>,
}

impl CounterRate {
    /// The count was `total_bytes` at `at_us`.
    pub fn on_sample(&mut self, at_us: u64, total_bytes: u64) {
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((at_us, total_bytes));
    }

    /// kbit/s over about the last `window_us`, or `None` before two samples apart in time.
    pub fn kbps(&self, window_us: u64) -> Option<f64> {
        let &(last_at, last_bytes) = self.samples.back()?;
        let start = last_at.saturating_sub(window_us);
        let &(first_at, first_bytes) =
            self.samples.iter().rev().find(|(at, _)| *at <= start).or(self.samples.front())?;
        let span_us = last_at.checked_sub(first_at).filter(|&span| span > 0)?;
        Some(last_bytes.saturating_sub(first_bytes) as f64 * 8_000.0 / span_us as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_over_the_window_from_the_sample_at_its_start() {
        let mut rate = CounterRate::default();
        assert_eq!(rate.kbps(300_000), None);
        rate.on_sample(0, 0);
        assert_eq!(rate.kbps(300_000), None, "one sample is no rate");
        // 12 500 bytes every 100 ms: 1 Mbit/s, then 2 Mbit/s from 300 ms.
        for (tick, bytes) in (1..=6).zip([12_500, 25_000, 37_500, 62_500, 87_500, 112_500]) {
            rate.on_sample(tick * 100_000, bytes);
        }
        assert_eq!(rate.kbps(300_000), Some(2_000.0), "from the sample at 300 ms");
        assert_eq!(rate.kbps(600_000), Some(1_500.0));
        assert_eq!(rate.kbps(5_000_000), Some(1_500.0), "the oldest kept, when the window reaches further");
    }

    #[test]
    fn only_the_last_eight_are_kept_and_hostile_counts_do_not_panic() {
        let mut rate = CounterRate::default();
        for tick in 0..20 {
            rate.on_sample(tick * 100_000, tick * 12_500);
        }
        assert_eq!(rate.samples.len(), MAX_SAMPLES);
        assert_eq!(rate.kbps(u64::MAX), Some(1_000.0));
        let mut rate = CounterRate::default();
        for (at, bytes) in [(u64::MAX, u64::MAX), (0, 0), (u64::MAX, 0), (0, u64::MAX), (1, u64::MAX)] {
            rate.on_sample(at, bytes);
            let _ = rate.kbps(300_000);
        }
    }
}
