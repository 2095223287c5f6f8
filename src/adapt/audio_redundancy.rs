//! Whether each sound datagram also carries the packet before it (redundant audio, as
//! RFC 2198's RED): on while the path loses packets, so that a lost packet is played from
//! the next one's copy instead of being made up by the decoder. It costs the sound's own
//! rate again (24 kbit/s), so a clean path goes without. Opus's own in-band FEC is not an
//! option: the encoder runs in low-delay mode, which is CELT only, and CELT has no FEC.
//!
//! Fed quinn's packet counters (as the estimator is) and the current time: on when a loss
//! sample reaches `ON_AT_LOSS`, off again once no sample has for `STAY_ON_US`. Only loss
//! that a copy can make up counts:
//! - loss while the round trip stands well above its smallest (`QUEUE_US`) is a full
//!   queue's: it drops packets in runs, a packet and the next datagram with its copy
//!   together. In the benchmark's capacity drop, copies sent then saved no frame at all,
//!   and cost a 0.5 Mbit/s link 24 kbit/s and the sound a frame of delay;
//! - the losses quinn declares when the link comes back after a silence are the
//!   silence's, not the path's.

use super::loss_sampler::LossSampler;

/// A sample with this much loss (one packet in a hundred) turns redundancy on: at 2 %
/// random loss, 2 in 100 frames would otherwise be concealed.
const ON_AT_LOSS: f64 = 0.01;
/// It stays on this long after the last such sample: random loss comes and goes between
/// half-second samples, and switching often would change the receiver's delay often.
const STAY_ON_US: u64 = 10_000_000;
/// A round trip this far above its smallest is a queue: loss then is the queue
/// overflowing. Well above what random loss does to quinn's smoothed round trip (a
/// lost packet delays the acknowledgements of those behind it by a few ms).
const QUEUE_US: u64 = 40_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct AudioRedundancy {
    loss: LossSampler,
    last_lossy_sample_us: Option<u64>,
}

impl AudioRedundancy {
    /// quinn's cumulative counters, and how far its round trip is above the smallest
    /// lately (`queue_us`), read at `now_us`.
    pub fn on_transport_stats(&mut self, now_us: u64, lost_packets: u64, sent_packets: u64, queue_us: u64) {
        let lossy = self.loss.sample(now_us, lost_packets, sent_packets).is_some_and(|loss| loss >= ON_AT_LOSS);
        if lossy && queue_us < QUEUE_US {
            self.last_lossy_sample_us = Some(now_us);
        }
    }

    /// The link came back after a silence at `now_us`.
    pub fn on_link_back(&mut self, now_us: u64) {
        self.loss.silence(now_us);
    }

    /// Whether sound datagrams should carry the previous packet at `now_us`.
    pub fn wanted(&self, now_us: u64) -> bool {
        self.last_lossy_sample_us.is_some_and(|at| now_us < at.saturating_add(STAY_ON_US))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    /// No queue on the path.
    const NO_QUEUE: u64 = 0;

    /// Every 100 ms from `from_ms` to `to_ms`, 30 packets sent and `lost(at_ms)` of them
    /// lost, with the round trip `queue_us` above its smallest; whether redundancy was
    /// wanted at each tick.
    fn run(
        redundancy: &mut AudioRedundancy,
        counters: &mut (u64, u64),
        from_ms: u64,
        to_ms: u64,
        lost: impl Fn(u64) -> u64,
        queue_us: u64,
    ) -> Vec<bool> {
        (from_ms..to_ms)
            .step_by(100)
            .map(|at_ms| {
                counters.0 += lost(at_ms);
                counters.1 += 30;
                redundancy.on_transport_stats(at_ms * MS, counters.0, counters.1, queue_us);
                redundancy.wanted(at_ms * MS)
            })
            .collect()
    }

    #[test]
    fn a_clean_path_goes_without_and_a_lossy_one_gets_it_until_the_loss_has_stopped_a_while() {
        let mut redundancy = AudioRedundancy::default();
        let mut counters = (0, 0);
        assert!(run(&mut redundancy, &mut counters, 0, 5_000, |_| 0, NO_QUEUE).iter().all(|&on| !on));
        // 2 % loss: one tick in five loses 3 of its 30 packets.
        let two_percent = |at_ms: u64| if at_ms.is_multiple_of(500) { 3 } else { 0 };
        let lossy = run(&mut redundancy, &mut counters, 5_000, 15_000, two_percent, NO_QUEUE);
        let first_on = lossy.iter().position(|&on| on).expect("turned on under 2 % loss");
        assert!(first_on <= 6, "on after {} ms of loss", first_on * 100);
        assert!(lossy[first_on..].iter().all(|&on| on), "it stays on while the loss goes on");
        // Clean again: still on for STAY_ON_US after the last lossy sample, then off.
        let clean = run(&mut redundancy, &mut counters, 15_000, 30_000, |_| 0, NO_QUEUE);
        let first_off = clean.iter().position(|&on| !on).expect("off again on a clean path");
        assert!((90..=110).contains(&first_off), "off {} ms after the loss stopped", first_off * 100);
        assert!(clean[first_off..].iter().all(|&on| !on));
    }

    #[test]
    fn the_losses_of_a_queue_that_overflows_do_not_turn_it_on() {
        let mut redundancy = AudioRedundancy::default();
        let mut counters = (0, 0);
        // The link falls below the rate sent: the round trip climbs by hundreds of ms and the
        // full queue drops one packet in ten.
        let lossy = |at_ms: u64| if at_ms.is_multiple_of(500) { 15 } else { 0 };
        assert!(run(&mut redundancy, &mut counters, 0, 5_000, lossy, 250_000).iter().all(|&on| !on));
        // The same loss with the round trip at its smallest is the path's own.
        assert!(run(&mut redundancy, &mut counters, 5_000, 7_000, lossy, 5_000).iter().any(|&on| on));
    }

    #[test]
    fn the_losses_of_an_outage_do_not_turn_it_on() {
        let mut redundancy = AudioRedundancy::default();
        let mut counters = (0, 0);
        run(&mut redundancy, &mut counters, 0, 3_000, |_| 0, NO_QUEUE);
        // The link comes back at 5 s and quinn declares what the outage ate as lost.
        redundancy.on_link_back(5_000 * MS);
        let after =
            run(&mut redundancy, &mut counters, 5_000, 8_000, |at_ms| if at_ms < 5_500 { 20 } else { 0 }, NO_QUEUE);
        assert!(after.iter().all(|&on| !on));
    }
}
