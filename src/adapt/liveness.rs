//! Whether the peer is heard: a silence of more than `SILENCE_US` (an outage, Wi-Fi
//! roaming, a tunnel) makes the call say "reconnecting…", and the moment anything arrives
//! again the sender starts a fresh group, so what went stale in the dead link is dropped
//! rather than delivered late. Fed the time at which packets were last seen; reads no clock.

/// Longer than this with nothing from the peer is an outage: audio alone comes every
/// 10 ms and reports every 100 ms, so a live link is never this quiet.
pub const SILENCE_US: u64 = 300_000;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// Nothing has come for `SILENCE_US`.
    WentSilent,
    /// Packets arrive again after a silence this long.
    CameBack { silent_for_us: u64 },
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Liveness {
    last_heard_us: Option<u64>,
    silent: bool,
}

impl Liveness {
    /// A check at `now_us`; `heard` says whether anything arrived since the last check.
    pub fn check(&mut self, now_us: u64, heard: bool) -> Option<LinkChange> {
        if heard {
            let since = self.last_heard_us.replace(now_us);
            if std::mem::take(&mut self.silent) {
                let silent_for_us = since.map_or(0, |since| now_us.saturating_sub(since));
                return Some(LinkChange::CameBack { silent_for_us });
            }
            return None;
        }
        let since = *self.last_heard_us.get_or_insert(now_us);
        if !self.silent && now_us.saturating_sub(since) > SILENCE_US {
            self.silent = true;
            return Some(LinkChange::WentSilent);
        }
        None
    }

    /// Whether the peer is silent now.
    pub fn is_silent(&self) -> bool {
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
