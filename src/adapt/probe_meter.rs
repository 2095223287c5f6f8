//! Probing, the receiver's side: for each cluster of padding datagrams (`probe`), how fast
//! everything the transport received arrived between the cluster's first datagram and its
//! last. Media count too: the sender compares with everything it sent over the cluster.
//! The result goes back as soon as the last datagram is in; a cluster whose last datagram
//! was lost has none, and the sender gives it up.

use super::probe::ProbeResult;

/// Fewer datagrams than this say too little about a rate.
const MIN_DATAGRAMS: u8 = 3;

#[derive(Debug, Clone, Copy)]
struct Cluster {
    id: u16,
    seen: u8,
    /// (arrival, bytes the transport had received by then) of its first datagram.
    first: (u64, u64),
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ProbeMeter {
    current: Option<Cluster>,
}

impl ProbeMeter {
    /// Datagram `index` of the `count` in cluster `id` arrived at `now_us`, when the transport
    /// had received `transport_bytes` since the connection started. Returns the cluster's
    /// result when this was its last datagram.
    pub fn on_probe(
        &mut self,
        now_us: u64,
        id: u16,
        index: u8,
        count: u8,
        transport_bytes: u64,
    ) -> Option<ProbeResult> {
        let cluster = match self.current.as_mut() {
            Some(cluster) if cluster.id == id => cluster,
            // A new cluster (the last one's end was lost, or it is done).
            _ => self.current.insert(Cluster { id, seen: 0, first: (now_us, transport_bytes) }),
        };
        cluster.seen = cluster.seen.saturating_add(1);
        if index.checked_add(1) != Some(count) {
            return None;
        }
        let cluster = self.current.take()?;
        let span_us = now_us.checked_sub(cluster.first.0).filter(|&span| span > 0)?;
        if cluster.seen < MIN_DATAGRAMS {
            return None;
        }
        let bits = u128::from(transport_bytes.saturating_sub(cluster.first.1)) * 8;
        let received_kbps = u32::try_from(bits * 1_000 / u128::from(span_us)).unwrap_or(u32::MAX);
        Some(ProbeResult { id, received_kbps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    #[test]
    fn everything_received_between_the_first_and_the_last_datagram_over_that_time() {
        let mut meter = ProbeMeter::default();
        // 6 250 bytes in the 50 ms after the first datagram: 1 000 kbit/s.
        for index in 0..5 {
            assert_eq!(meter.on_probe(u64::from(index) * 10 * MS, 3, index, 6, 1_000 + u64::from(index) * 1_250), None);
        }
        assert_eq!(meter.on_probe(50 * MS, 3, 5, 6, 7_250), Some(ProbeResult { id: 3, received_kbps: 1_000 }));
        assert_eq!(meter.on_probe(60 * MS, 3, 5, 6, 9_000), None, "a duplicate of the last starts nothing");
    }

    #[test]
    fn a_lost_first_datagram_moves_the_start_and_a_lost_last_one_gives_no_result() {
        let mut meter = ProbeMeter::default();
        for index in 1..5 {
            meter.on_probe(u64::from(index) * 10 * MS, 1, index, 6, u64::from(index) * 1_250);
        }
        let result = meter.on_probe(50 * MS, 1, 5, 6, 5 * 1_250).expect("five of six");
        assert_eq!(result.received_kbps, 1_000);
        for index in 0..5 {
            assert_eq!(meter.on_probe(u64::from(index) * 10 * MS, 2, index, 6, 0), None);
        }
        // The next cluster starts afresh.
        meter.on_probe(2_000 * MS, 3, 0, 6, 0);
        assert!(meter.on_probe(2_010 * MS, 3, 5, 6, 1_000).is_none(), "two datagrams are too few");
    }

    #[test]
    fn hostile_numbers_do_not_panic() {
        let mut meter = ProbeMeter::default();
        for (now, id, index, count, bytes) in [
            (u64::MAX, 0, 0, 0, u64::MAX),
            (0, 0, 255, 0, 0),
            (0, 0, 254, 255, 0),
            (5, 1, 0, 1, u64::MAX),
            (u64::MAX, 1, 0, 1, 0),
        ] {
            meter.on_probe(now, id, index, count, bytes);
        }
        let mut meter = ProbeMeter::default();
        meter.on_probe(0, 9, 0, 3, 0);
        meter.on_probe(0, 9, 1, 3, 0);
        assert_eq!(meter.on_probe(1, 9, 2, 3, u64::MAX), Some(ProbeResult { id: 9, received_kbps: u32::MAX }));
    }
}
