//! A limit on how fast a peer may send packets that cost us work (audio datagrams: each one
//! is decrypted, parsed and handed to the jitter buffer and Opus). A token bucket lets an
//! honest peer's bursts through, drops what comes faster, and says when a peer has kept
//! flooding long enough to be hung up on. Sans IO: time is an argument.

use std::time::{Duration, Instant};

/// What to do with one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: process it.
    Pass,
    /// Over the limit: drop it unread.
    Drop,
    /// Over the limit for too long: end the call.
    Disconnect,
}

/// The limit's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodLimit {
    /// Packets a second allowed on average.
    pub per_second: f64,
    /// Packets allowed at once above the average (a burst after a stall).
    pub burst: f64,
    /// A flood (drops with no second free of them) lasting this long ends the call.
    pub disconnect_after: Duration,
}

/// A quiet second ends a flood.
const FLOOD_ENDS_AFTER: Duration = Duration::from_secs(1);

/// One peer's bucket.
#[derive(Debug)]
pub struct FloodGuard {
    limit: FloodLimit,
    tokens: f64,
    refilled_at: Option<Instant>,
    /// When the current run of drops began, and the last drop.
    flood: Option<(Instant, Instant)>,
    dropped: u64,
}

impl FloodGuard {
    pub fn new(limit: FloodLimit) -> Self {
        Self { limit, tokens: limit.burst, refilled_at: None, flood: None, dropped: 0 }
    }

    /// Judges a packet that arrived at `now`.
    pub fn admit(&mut self, now: Instant) -> Verdict {
        let elapsed = self.refilled_at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.limit.per_second).min(self.limit.burst);
        self.refilled_at = Some(now);
        if self.flood.is_some_and(|(_, last_drop)| now.saturating_duration_since(last_drop) >= FLOOD_ENDS_AFTER) {
            self.flood = None;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Pass;
        }
        self.dropped += 1;
        let began = self.flood.map_or(now, |(began, _)| began);
        self.flood = Some((began, now));
        if now.saturating_duration_since(began) >= self.limit.disconnect_after {
            Verdict::Disconnect
        } else {
            Verdict::Drop
        }
    }

    /// Packets dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: FloodLimit = FloodLimit { per_second: 200.0, burst: 100.0, disconnect_after: Duration::from_secs(3) };

    /// Sends `per_second` packets a second for `duration` from `start`; counts the verdicts.
    fn send(guard: &mut FloodGuard, start: Instant, per_second: u32, duration: Duration) -> (u32, u32, u32) {
        let (mut pass, mut drop, mut disconnect) = (0, 0, 0);
        let packets = (duration.as_secs_f64() * f64::from(per_second)) as u32;
        for i in 0..packets {
            match guard.admit(start + Duration::from_secs_f64(f64::from(i) / f64::from(per_second))) {
                Verdict::Pass => pass += 1,
                Verdict::Drop => drop += 1,
                Verdict::Disconnect => disconnect += 1,
            }
        }
        (pass, drop, disconnect)
    }

    #[test]
    fn an_honest_peer_at_100_a_second_is_never_dropped() {
        let mut guard = FloodGuard::new(LIMIT);
        assert_eq!(send(&mut guard, Instant::now(), 100, Duration::from_secs(60)), (6000, 0, 0));
    }

    #[test]
    fn a_burst_after_a_stall_passes() {
        let mut guard = FloodGuard::new(LIMIT);
        let start = Instant::now();
        send(&mut guard, start, 100, Duration::from_secs(2));
        // Half a second of sound held up somewhere arrives at once.
        let at = start + Duration::from_secs(3);
        assert!((0..50).all(|_| guard.admit(at) == Verdict::Pass));
        assert_eq!(guard.dropped(), 0);
    }

    #[test]
    fn a_flood_is_cut_to_the_limit_then_hung_up_on() {
        let start = Instant::now();
        let (pass, drop, disconnect) = send(&mut FloodGuard::new(LIMIT), start, 9000, Duration::from_millis(2900));
        assert!(pass <= 100 + 200 * 3, "{pass}");
        assert!(drop > 20_000 && disconnect == 0, "{drop} {disconnect}");
        // The same flood a little longer: three seconds of it end the call.
        let (_, _, disconnect) = send(&mut FloodGuard::new(LIMIT), start, 9000, Duration::from_millis(3200));
        assert!(disconnect > 0);
    }

    #[test]
    fn short_floods_apart_from_each_other_are_forgiven() {
        let mut guard = FloodGuard::new(LIMIT);
        let start = Instant::now();
        for second in 0..10 {
            // Two seconds of flood, then two quiet seconds.
            let at = start + Duration::from_secs(4 * second);
            let (_, drop, disconnect) = send(&mut guard, at, 1000, Duration::from_secs(2));
            assert!(drop > 0 && disconnect == 0);
        }
    }
}
