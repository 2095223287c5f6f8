//! A model link in simulated time (test support): a bottleneck whose rate follows a
//! schedule, optionally a token bucket's burst (as a `tbf` qdisc has), a tail-drop queue
//! limit, a one-way delay, seeded random loss and outage windows. The way back
//! (acknowledgements, control messages) has the same delay and the same outages, no
//! bottleneck and no random loss; what an outage holds back on it arrives when the outage
//! ends, as a reliable stream's data would.

use std::ops::Range;

/// How the link behaves.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// (from when, kbit/s), in time order, the first from 0.
    pub rate_schedule: Vec<(u64, u32)>,
    /// Propagation delay each way.
    pub one_way_delay_us: u64,
    /// A packet that would wait longer than this for the bottleneck is dropped.
    pub queue_limit_us: u64,
    /// Bytes the bottleneck saves up while idle and then lets through at once (a token
    /// bucket's depth; 0: none).
    pub burst_bytes: u64,
    /// Chance that a packet is lost on the wire, after the bottleneck.
    pub loss: f64,
    /// Times when nothing gets through, either way.
    pub outages: Vec<Range<u64>>,
    /// Seed of the loss draws.
    pub seed: u64,
}

impl LinkConfig {
    /// A clean link at `kbps`: 40 ms round trip, 300 ms of queue.
    pub fn constant(kbps: u32) -> Self {
        Self {
            rate_schedule: vec![(0, kbps)],
            one_way_delay_us: 20_000,
            queue_limit_us: 300_000,
            burst_bytes: 0,
            loss: 0.0,
            outages: vec![],
            seed: 1,
        }
    }
}

/// What becomes of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It arrives at the far end then.
    Arrives { at_us: u64 },
    /// It is dropped (queue full, random loss, outage).
    Lost,
}

/// See the module documentation.
#[derive(Debug)]
pub struct ModelLink {
    config: LinkConfig,
    /// When the bottleneck has sent everything queued so far.
    free_at_us: u64,
    /// Bytes saved up while it was idle, up to `burst_bytes`.
    saved_bytes: u64,
    draws: SeededDraws,
}

impl ModelLink {
    /// A link with nothing queued.
    pub fn new(config: LinkConfig) -> Self {
        let draws = SeededDraws(config.seed);
        Self { config, free_at_us: 0, saved_bytes: 0, draws }
    }

    /// The propagation delay each way.
    pub fn one_way_delay_us(&self) -> u64 {
        self.config.one_way_delay_us
    }

    /// The bottleneck's rate at `at_us`.
    pub fn rate_kbps(&self, at_us: u64) -> u32 {
        self.config.rate_schedule.iter().take_while(|(from, _)| *from <= at_us).last().map_or(0, |(_, kbps)| *kbps)
    }

    /// The best rate in `[from_us, to_us]`.
    pub fn max_rate_kbps(&self, from_us: u64, to_us: u64) -> u32 {
        let within = self.config.rate_schedule.iter().filter(|(at, _)| (from_us..=to_us).contains(at));
        within.map(|(_, kbps)| *kbps).fold(self.rate_kbps(from_us), u32::max)
    }

    /// Whether nothing gets through at `at_us`.
    pub fn in_outage(&self, at_us: u64) -> bool {
        self.config.outages.iter().any(|outage| outage.contains(&at_us))
    }

    /// Sends a packet of `bytes` into the bottleneck now.
    pub fn send(&mut self, now_us: u64, bytes: u32) -> Delivery {
        let start_us = self.free_at_us.max(now_us);
        let kbps = self.rate_kbps(start_us);
        if start_us - now_us > self.config.queue_limit_us || self.in_outage(start_us) || kbps == 0 {
            return Delivery::Lost;
        }
        let idle_us = now_us.saturating_sub(self.free_at_us);
        let saved = self.saved_bytes + idle_us * u64::from(kbps) / 8_000;
        let spent = saved.min(self.config.burst_bytes).min(u64::from(bytes));
        self.saved_bytes = saved.min(self.config.burst_bytes) - spent;
        self.free_at_us = start_us + (u64::from(bytes) - spent) * 8_000 / u64::from(kbps);
        if self.draws.next() < self.config.loss {
            return Delivery::Lost;
        }
        Delivery::Arrives { at_us: self.free_at_us + self.config.one_way_delay_us }
    }

    /// When something sent back now (an acknowledgement, a report) arrives.
    pub fn back_arrival_us(&self, now_us: u64) -> u64 {
        let leaves_us = self.config.outages.iter().find(|outage| outage.contains(&now_us)).map_or(now_us, |o| o.end);
        let arrives_us = leaves_us + self.config.one_way_delay_us;
        self.config.outages.iter().find(|outage| outage.contains(&arrives_us)).map_or(arrives_us, |o| o.end)
    }
}

/// Uniform draws in [0, 1) from a seed (splitmix64), for the simulation's randomness.
#[derive(Debug, Clone)]
pub struct SeededDraws(pub u64);

impl SeededDraws {
    /// The next draw.
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_wait_for_the_bottleneck_and_overflow_its_queue() {
        let mut link =
            ModelLink::new(LinkConfig { rate_schedule: vec![(0, 1_000), (1_000_000, 500)], ..LinkConfig::constant(0) });
        // 1 250 bytes at 1 Mbit/s: 10 ms each.
        assert_eq!(link.send(0, 1_250), Delivery::Arrives { at_us: 30_000 });
        assert_eq!(link.send(0, 1_250), Delivery::Arrives { at_us: 40_000 });
        let arrivals: Vec<Delivery> = (0..40).map(|_| link.send(0, 1_250)).collect();
        assert_eq!(arrivals.iter().filter(|d| **d == Delivery::Lost).count(), 11, "300 ms of queue, then drops");
        // After the rate change, 20 ms each.
        assert_eq!(link.send(1_000_000, 1_250), Delivery::Arrives { at_us: 1_040_000 });
        assert_eq!(link.max_rate_kbps(900_000, 1_100_000), 1_000);
        assert_eq!(link.max_rate_kbps(1_000_000, 1_100_000), 500);
    }

    #[test]
    fn a_token_bucket_lets_a_burst_through_after_an_idle_spell_then_the_rate() {
        let mut link = ModelLink::new(LinkConfig { burst_bytes: 2_500, ..LinkConfig::constant(1_000) });
        // Idle for a second: 2 500 bytes go at once, then 10 ms per 1 250.
        let arrivals: Vec<Delivery> = (0..4).map(|_| link.send(1_000_000, 1_250)).collect();
        let at = |ms: u64| Delivery::Arrives { at_us: 1_000_000 + ms * 1_000 };
        assert_eq!(arrivals, [at(20), at(20), at(30), at(40)]);
        // 5 ms idle saves 625 bytes: the next goes 5 ms faster.
        assert_eq!(link.send(1_025_000, 1_250), at(50));
    }

    #[test]
    fn outages_drop_everything_and_hold_back_the_way_back() {
        let outage = 1_000_000..3_000_000;
        let mut link = ModelLink::new(LinkConfig { outages: vec![outage], ..LinkConfig::constant(1_000) });
        assert_eq!(link.send(1_500_000, 100), Delivery::Lost);
        assert_eq!(link.back_arrival_us(1_500_000), 3_020_000);
        assert_eq!(link.back_arrival_us(990_000), 3_000_000);
        assert_eq!(link.back_arrival_us(500_000), 520_000);
        assert!(matches!(link.send(3_000_000, 100), Delivery::Arrives { .. }));
    }

    #[test]
    fn random_loss_follows_its_rate_and_its_seed() {
        let lost = |seed| {
            let mut link = ModelLink::new(LinkConfig { loss: 0.02, seed, ..LinkConfig::constant(100_000) });
            (0..100_000u64).filter(|i| link.send(i * 1_000, 100) == Delivery::Lost).count()
        };
        assert_eq!(lost(7), lost(7));
        assert!((1_800..2_200).contains(&lost(7)), "{}", lost(7));
    }
}
