//! Whether the peer is heard: a silence of more than `SILENCE_US` (an outage, Wi-Fi
//! roaming, a tunnel) makes the call say "reconnecting…", and the moment anything arrives
//! again the sender starts a fresh group, so what went stale in the dead link is dropped
//! rather than delivered late. A silence that goes on is a cue for the caller to move to
//! a fresh socket: the network it used may be gone (a laptop leaving Wi-Fi), or a NAT may
//! have forgotten its mapping; QUIC migrates the call without a new handshake. Fed whether
//! packets arrived since the last check; reads no clock.

/// Longer than this with nothing from the peer is an outage: audio alone comes every
/// 10 ms and reports every 100 ms, so a live link is never this quiet.
pub const SILENCE_US: u64 = 300_000;

/// A silence this long is a cue to rebind (the caller only: the listener's address is what
/// callers know), and every `REBIND_AGAIN_US` after while it lasts.
pub const REBIND_AFTER_US: u64 = 1_000_000;
pub const REBIND_AGAIN_US: u64 = 2_000_000;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// Nothing has come for `SILENCE_US`.
    WentSilent,
    /// Packets arrive again after a silence this long.
    CameBack { silent_for_us: u64 },
    /// Still silent: time to try a fresh socket.
    Rebind,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Liveness {
    last_heard_us: Option<u64>,
    silent: bool,
    /// When the next rebinding is due, during a silence.
    rebind_at_us: Option<u64>,
}

impl Liveness {
    /// A check at `now_us`; `heard` says whether anything arrived since the last check.
    pub fn check(&mut self, now_us: u64, heard: bool) -> Option<LinkChange> {
        if heard {
            let since = self.last_heard_us.replace(now_us);
            self.rebind_at_us = None;
            if std::mem::take(&mut self.silent) {
                let silent_for_us = since.map_or(0, |since| now_us.saturating_sub(since));
                return Some(LinkChange::CameBack { silent_for_us });
            }
            return None;
        }
        let since = *self.last_heard_us.get_or_insert(now_us);
        if !self.silent && now_us.saturating_sub(since) > SILENCE_US {
            self.silent = true;
            self.rebind_at_us = Some(since.saturating_add(REBIND_AFTER_US));
            return Some(LinkChange::WentSilent);
        }
        match self.rebind_at_us {
            Some(at) if self.silent && now_us >= at => {
                self.rebind_at_us = Some(now_us.saturating_add(REBIND_AGAIN_US));
                Some(LinkChange::Rebind)
            }
            _ => None,
        }
    }

    /// Whether the peer is silent now.
    #[cfg(test)]
    fn is_silent(&self) -> bool {
        self.silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    #[test]
    fn a_silence_longer_than_the_limit_is_reported_once_and_so_is_the_return() {
        let mut live = Liveness::default();
        assert_eq!(live.check(0, true), None);
        for t in (100..=300).step_by(100) {
            assert_eq!(live.check(t * MS, false), None, "{t} ms of silence is not yet an outage");
        }
        assert_eq!(live.check(400 * MS, false), Some(LinkChange::WentSilent));
        assert!(live.is_silent());
        assert_eq!(live.check(500 * MS, false), None);
        assert_eq!(live.check(2_100 * MS, true), Some(LinkChange::CameBack { silent_for_us: 2_100 * MS }));
        assert!(!live.is_silent());
        assert_eq!(live.check(2_200 * MS, true), None);
    }

    #[test]
    fn a_silence_that_goes_on_asks_for_a_fresh_socket_after_a_second_then_every_two() {
        let mut live = Liveness::default();
        live.check(0, true);
        let changes: Vec<(u64, LinkChange)> =
            (1..=60).filter_map(|t| live.check(t * 100 * MS, false).map(|change| (t * 100, change))).collect();
        assert_eq!(
            changes,
            [
                (400, LinkChange::WentSilent),
                (1_000, LinkChange::Rebind),
                (3_000, LinkChange::Rebind),
                (5_000, LinkChange::Rebind)
            ]
        );
        assert_eq!(live.check(6_100 * MS, true), Some(LinkChange::CameBack { silent_for_us: 6_100 * MS }));
        assert_eq!(live.check(6_300 * MS, false), None, "no rebinding left over from the last silence");
    }

    #[test]
    fn steady_traffic_and_short_gaps_change_nothing() {
        let mut live = Liveness::default();
        for t in 0..100 {
            assert_eq!(live.check(t * 100 * MS, t % 3 != 0), None);
        }
    }

    #[test]
    fn a_peer_never_heard_goes_silent_from_the_first_check() {
        let mut live = Liveness::default();
        assert_eq!(live.check(1_000 * MS, false), None);
        assert_eq!(live.check(1_301 * MS, false), Some(LinkChange::WentSilent));
    }
}
