//! After a silence (an outage), the pictures that waited in the link are stale: they are
//! decoded, since later pictures refer to them, but not shown, until a fresh one arrives.
//! The first arrival after the silence asks the peer for a keyframe, so a fresh picture
//! comes at once even if the peer did not notice the outage. Pure: fed arrival times and
//! picture ages.

/// A gap in arrivals longer than this is a silence (pictures come at least 5 times a second).
pub const SILENCE_US: u64 = 300_000;
/// After a silence, pictures older than this are not shown.
pub const FRESH_US: i64 = 300_000;
/// ... for at most this long after the silence: on a link that cannot do better, late
/// pictures are better than none.
pub const RECOVERY_LIMIT_US: u64 = 2_000_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Freshness {
    last_arrival_us: Option<u64>,
    /// When the silence ended, while no fresh picture has been shown since.
    recovering_since_us: Option<u64>,
}

impl Freshness {
    /// A picture arrived at `now_us`; true when it ends a silence (ask for a keyframe).
    pub fn on_arrival(&mut self, now_us: u64) -> bool {
        let after_silence =
            self.last_arrival_us.replace(now_us).is_some_and(|last| now_us.saturating_sub(last) > SILENCE_US);
        if after_silence {
            self.recovering_since_us = Some(now_us);
        }
        after_silence
    }

    /// Whether a decoded picture `age_us` old (capture to now) is shown at `now_us`.
    pub fn should_show(&mut self, now_us: u64, age_us: i64) -> bool {
        let Some(since) = self.recovering_since_us else {
            return true;
        };
        if age_us <= FRESH_US || now_us.saturating_sub(since) > RECOVERY_LIMIT_US {
            self.recovering_since_us = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    #[test]
    fn after_a_silence_stale_pictures_are_hidden_until_a_fresh_one() {
        let mut fresh = Freshness::default();
        assert!(!fresh.on_arrival(0));
        assert!(fresh.should_show(0, 900_000), "a late picture in a flowing call is shown");
        assert!(!fresh.on_arrival(33 * MS));
        assert!(fresh.on_arrival(2_033 * MS), "two seconds of nothing");
        assert!(!fresh.should_show(2_033 * MS, 2_000_000));
        assert!(!fresh.on_arrival(2_040 * MS));
        assert!(!fresh.should_show(2_040 * MS, 1_900_000));
        assert!(fresh.should_show(2_100 * MS, 60_000), "the first fresh picture");
        assert!(fresh.should_show(2_133 * MS, 400_000), "and everything after it");
    }

    #[test]
    fn on_a_link_that_stays_slow_pictures_come_back_after_the_limit() {
        let mut fresh = Freshness::default();
        fresh.on_arrival(0);
        assert!(fresh.on_arrival(1_000 * MS));
        assert!(!fresh.should_show(2_000 * MS, 800_000));
        assert!(fresh.should_show(3_001 * MS, 800_000));
    }

    #[test]
    fn hostile_times_do_not_panic() {
        let mut fresh = Freshness::default();
        fresh.on_arrival(u64::MAX);
        fresh.on_arrival(0);
        assert!(fresh.should_show(0, i64::MIN));
        assert!(fresh.on_arrival(u64::MAX));
        fresh.should_show(0, i64::MAX);
    }
}
