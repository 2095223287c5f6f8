//! After an outage, the pictures that waited in the dead link are stale: they are decoded,
//! since later pictures refer to them, but not shown, until a fresh one arrives. The call
//! says when the link came back (`adapt::liveness`: nothing at all, sound included, for
//! 300 ms): a gap between pictures alone is no outage, since on a slow link pictures may
//! come a few a second. Pure: fed those moments and picture ages.

/// After an outage, pictures older than this are not shown.
pub const FRESH_US: i64 = 300_000;
/// ... for at most this long after the link came back: on a link that cannot do better,
/// late pictures are better than none.
pub const RECOVERY_LIMIT_US: u64 = 2_000_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Freshness {
    /// When the link came back, while no fresh picture has been shown since.
    recovering_since_us: Option<u64>,
}

impl Freshness {
    /// The link came back at `now_us` after an outage.
    pub fn on_link_back(&mut self, now_us: u64) {
        self.recovering_since_us = Some(now_us);
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
    fn after_an_outage_stale_pictures_are_hidden_until_a_fresh_one() {
        let mut fresh = Freshness::default();
        assert!(fresh.should_show(0, 900_000), "a late picture in a flowing call is shown");
        fresh.on_link_back(2_033 * MS);
        assert!(!fresh.should_show(2_033 * MS, 2_000_000));
        assert!(!fresh.should_show(2_040 * MS, 1_900_000));
        assert!(fresh.should_show(2_100 * MS, 60_000), "the first fresh picture");
        assert!(fresh.should_show(2_133 * MS, 400_000), "and everything after it");
    }

    #[test]
    fn on_a_link_that_stays_slow_pictures_come_back_after_the_limit() {
        let mut fresh = Freshness::default();
        fresh.on_link_back(1_000 * MS);
        assert!(!fresh.should_show(2_000 * MS, 800_000));
        assert!(fresh.should_show(3_001 * MS, 800_000));
    }

    #[test]
    fn hostile_times_do_not_panic() {
        let mut fresh = Freshness::default();
        fresh.on_link_back(u64::MAX);
        assert!(!fresh.should_show(0, i64::MAX));
        assert!(fresh.should_show(0, i64::MIN));
        fresh.on_link_back(0);
        assert!(fresh.should_show(u64::MAX, i64::MAX));
    }
}
