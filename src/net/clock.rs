//! Wall-clock time in microseconds, and the NTP-style estimate of the offset between
//! this peer's clock and the other's, from ping/pong exchanges on the control stream.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch on this machine's wall clock.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// How many recent exchanges the estimate looks at.
const WINDOW: usize = 16;

/// One ping/pong exchange's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    rtt_us: i64,
    offset_us: i64,
}

/// Estimates `peer clock - local clock` from the exchange with the smallest round trip
/// among the recent ones: queueing delay only ever adds to a round trip, so the fastest
/// exchange is the least distorted.
#[derive(Debug, Default)]
pub struct ClockSync {
    samples: VecDeque<Sample>,
}

impl ClockSync {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exchange: our ping left at `t0` (local), reached the peer at `t1`, the pong
    /// left at `t2` (peer's clock), and arrived at `t3` (local). Nonsense (a negative
    /// round trip, or times no clock could show) is ignored.
    pub fn add_exchange(&mut self, t0: u64, t1: u64, t2: u64, t3: u64) {
        // The peer's times are whatever it sent: i128 holds any difference of two u64s.
        let (t0, t1, t2, t3) = (i128::from(t0), i128::from(t1), i128::from(t2), i128::from(t3));
        let rtt = (t3 - t0) - (t2 - t1);
        if rtt < 0 || t2 < t1 {
            return;
        }
        let (Ok(rtt_us), Ok(offset_us)) = (i64::try_from(rtt), i64::try_from(((t1 - t0) + (t2 - t3)) / 2)) else {
            return;
        };
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { rtt_us, offset_us });
    }

    /// `peer clock - local clock` in microseconds, once an exchange has completed.
    pub fn offset_us(&self) -> Option<i64> {
        self.samples.iter().min_by_key(|s| s.rtt_us).map(|s| s.offset_us)
    }

    /// Converts a time on the peer's clock to the local clock (assumes zero offset until
    /// an exchange has completed, which is exact when both peers share a host).
    pub fn to_local_us(&self, peer_us: u64) -> i64 {
        (peer_us as i64).saturating_sub(self.offset_us().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_exchange_gives_the_exact_offset() {
        let mut sync = ClockSync::new();
        assert_eq!(sync.offset_us(), None);
        // Peer is 5000 us ahead; 100 us each way; peer holds the ping for 10 us.
        sync.add_exchange(1_000, 6_100, 6_110, 1_210);
        assert_eq!(sync.offset_us(), Some(5_000));
        assert_eq!(sync.to_local_us(6_100), 1_100);
    }

    #[test]
    fn the_fastest_recent_exchange_wins_and_old_ones_age_out() {
        let mut sync = ClockSync::new();
        // Slow, asymmetric exchange: offset estimate skewed by queueing.
        sync.add_exchange(0, 5_900, 5_900, 2_000);
        sync.add_exchange(10_000, 15_100, 15_100, 10_200);
        assert_eq!(sync.offset_us(), Some(5_000));
        for i in 0..WINDOW as u64 {
            let t = 100_000 + i * 1_000;
            sync.add_exchange(t, t + 7_300, t + 7_300, t + 600);
        }
        assert_eq!(sync.offset_us(), Some(7_000));
    }

    #[test]
    fn impossible_exchanges_are_ignored() {
        let mut sync = ClockSync::new();
        sync.add_exchange(1_000, 0, 0, 500);
        sync.add_exchange(0, 10, 5, 100);
        assert_eq!(sync.offset_us(), None);
    }
}
