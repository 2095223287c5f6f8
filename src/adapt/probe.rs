//! Probing, the sender's side: while the link holds the call down, now and then a short
//! cluster of padding datagrams takes the sending rate to about `PROBE_FACTOR` x the
//! estimate for `CLUSTER_US`; the receiver measures how fast everything arrived between
//! the cluster's first and last datagram (`probe_meter`) and says so at once. What arrived
//! against what left tells whether the path has room (GCC's probe controller and probe
//! bitrate estimator, libwebrtc's goog_cc):
//!
//! - received at least `CARRIED_WHOLE` x sent: the path carried it; the next cluster goes
//!   at once, at `PROBE_FACTOR` x what went through (GCC's further probing), and when that
//!   one is carried whole too, the estimate rises to what the first carried;
//! - less: what arrived is the bottleneck's rate, the path's capacity.
//!
//! Why a rise waits for the next cluster: through a token bucket (a `tbf` qdisc, many
//! access links), a cluster that finds the bucket full goes through whole at more than
//! the rate, and rising on it overshot a 1 Mbit/s link to 1.4 Mbit/s every few seconds.
//! The next cluster, half again faster, empties the bucket and shows the rate.
//!
//! A chain whose first cluster went through whole and whose next did not, with nothing
//! confirmed, was carried by such a burst: the next periodic cluster waits twice as long
//! (`BURST_FOOLED_EVERY_US`), until a chain confirms room again. Each such chain costs the
//! sound 40-80 ms of queue (the faster cluster has to empty the bucket), and on the 1 Mbit/s
//! tbf link they came every 2 s, each concealing a few frames of sound. A path without a
//! bucket (or one whose capacity came back) is probed every 2 s as before.
//!
//! Without probes the only sign that a path opened was overshooting it: the ramp that
//! found a restored link also overshot a constant one every two seconds. A cluster costs
//! the bottleneck's queue about (`PROBE_FACTOR` - 1) x `CLUSTER_US` of delay, once.

use super::HEADROOM;
use super::counter_rate::CounterRate;

/// A cluster takes the sender's rate to about this many times the estimate.
pub const PROBE_FACTOR: f64 = 1.5;
/// How long a cluster lasts: long enough that the receiver's timing (a task waking up)
/// is a small share of it, short enough to queue little.
pub const CLUSTER_US: u64 = 50_000;
/// Padding datagrams in a cluster, first and last included: at least this many...
const MIN_CLUSTER_DATAGRAMS: u8 = 6;
/// ... and at most this many (20 in 50 ms carry 3.5 Mbit/s; a chain of clusters stays
/// well under the peer's flood limit of 350 datagrams a second, sound included).
const MAX_CLUSTER_DATAGRAMS: u8 = 20;
/// Padding per datagram, bytes: at least this much...
const MIN_PADDING_BYTES: usize = 100;
/// ... and at most this much, under any path's datagram size.
pub const MAX_PADDING_BYTES: usize = 1_100;
/// The sending rate the padding adds to is measured over about this long.
const SENDING_WINDOW_US: u64 = 300_000;
/// While the link holds the call down, a cluster at most this often...
pub const PROBE_EVERY_US: u64 = 2_000_000;
/// ... or this often after a chain a token bucket's burst carried.
const BURST_FOOLED_EVERY_US: u64 = 4_000_000;
/// ... and not within this long of a cut: the queue that caused it is still draining.
const QUIET_AFTER_CUT_US: u64 = 1_000_000;
/// A cluster whose result has not come back by then is given up.
const RESULT_TIMEOUT_US: u64 = 1_000_000;
/// Received at least this share of the rate sent: the path carried the whole cluster.
pub const CARRIED_WHOLE: f64 = 0.9;

/// A cluster to send: `datagrams` padding datagrams of `padding_bytes`, one every `spacing_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCluster {
    pub id: u16,
    pub datagrams: u8,
    pub padding_bytes: usize,
    pub spacing_us: u64,
}

/// What the transport had sent when the cluster's first and last datagram went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSent {
    pub id: u16,
    /// (time, bytes the transport had sent by then) at the first datagram.
    pub first: (u64, u64),
    /// The same at the last one.
    pub last: (u64, u64),
}

/// The receiver's measure of a cluster: how fast everything arrived between its first and
/// last datagram. Its fixed 6-byte wire layout: `id: u16`, `received_kbps: u32`, big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    pub id: u16,
    pub received_kbps: u32,
}

/// Size of an encoded `ProbeResult`.
pub const PROBE_RESULT_BYTES: usize = 6;

impl ProbeResult {
    /// The result in its wire layout.
    pub fn encode(&self) -> [u8; PROBE_RESULT_BYTES] {
        let mut bytes = [0; PROBE_RESULT_BYTES];
        bytes[..2].copy_from_slice(&self.id.to_be_bytes());
        bytes[2..].copy_from_slice(&self.received_kbps.to_be_bytes());
        bytes
    }

    /// Reads a result from the peer: exactly `PROBE_RESULT_BYTES`, or `None`.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; PROBE_RESULT_BYTES] = bytes.try_into().ok()?;
        Some(Self {
            id: u16::from_be_bytes([bytes[0], bytes[1]]),
            received_kbps: u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]),
        })
    }
}

/// What a cluster showed, media and padding together, kbit/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeOutcome {
    pub sent_kbps: f64,
    pub received_kbps: f64,
    /// When this cluster and the one before it were both carried whole: what went through
    /// the one before, which this one confirms the path carries.
    pub confirmed_kbps: Option<f64>,
}

impl ProbeOutcome {
    /// Whether the path carried the whole cluster.
    pub fn carried_whole(&self) -> bool {
        self.received_kbps >= CARRIED_WHOLE * self.sent_kbps
    }

    /// What went through: what arrived, but never more than what left.
    pub fn through_kbps(&self) -> f64 {
        self.received_kbps.min(self.sent_kbps)
    }
}

/// What the sender knows when it considers a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeContext {
    pub estimate_kbps: u32,
    /// The estimate has been cut and is below its ceiling (`BandwidthEstimator::link_limited`):
    /// there is a limit to test, and room above it.
    pub link_limited: bool,
    /// When the estimate was last cut.
    pub last_cut_us: Option<u64>,
    /// A queue shows (quinn's round trip, or the receiver's standing queue).
    pub queued: bool,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u16,
    started_us: u64,
    sent: Option<ProbeSent>,
    result: Option<ProbeResult>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ProbeController {
    next_id: u16,
    pending: Option<Pending>,
    last_probe_us: Option<u64>,
    /// What went through the last cluster, if it was carried whole: the next goes at once,
    /// from there.
    carried_kbps: Option<f64>,
    /// A cluster of the chain under way confirmed the one before it.
    chain_confirmed: bool,
    /// The last chain ended with nothing confirmed after a cluster carried whole.
    burst_fooled: bool,
    /// The transport's count of bytes sent: what the padding adds to.
    sent: CounterRate,
}

impl ProbeController {
    /// The transport had sent `sent_bytes` since the connection started, at `now_us`.
    pub fn on_transport_sent(&mut self, now_us: u64, sent_bytes: u64) {
        self.sent.on_sample(now_us, sent_bytes);
    }

    /// The cluster to send now, if one is due.
    pub fn poll(&mut self, now_us: u64, context: ProbeContext) -> Option<ProbeCluster> {
        if self.pending.is_some_and(|pending| now_us.saturating_sub(pending.started_us) >= RESULT_TIMEOUT_US) {
            self.pending = None;
            self.carried_kbps = None;
        }
        // A chain goes on at once: the path has just carried a cluster whole, so a queue
        // seen in the last reports is gone or small, and the next cluster will tell.
        let again = self.carried_kbps.is_some();
        let every_us = if self.burst_fooled { BURST_FOOLED_EVERY_US } else { PROBE_EVERY_US };
        let periodic = self.last_probe_us.is_none_or(|last| now_us.saturating_sub(last) >= every_us);
        let settled = context.last_cut_us.is_none_or(|cut| now_us.saturating_sub(cut) >= QUIET_AFTER_CUT_US);
        let quiet = settled && !context.queued;
        if self.pending.is_some() || !context.link_limited || !(again || periodic && quiet) {
            return None;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.pending = Some(Pending { id, started_us: now_us, sent: None, result: None });
        self.last_probe_us = Some(now_us);
        // The padding brings what the transport sends to PROBE_FACTOR x the estimate, the
        // media taking their share (HEADROOM of it). Within a chain, after a cluster the
        // path carried whole, it brings it to PROBE_FACTOR x what went through that one (at
        // most PROBE_FACTOR x the estimate: a token bucket's burst may have carried it), on
        // top of what the transport measurably sends: an encoder climbing back from a small
        // picture size sends well under its share, and padding on the share's assumption
        // kept the clusters at the rate already known.
        let estimate = f64::from(context.estimate_kbps);
        let share_padding = (PROBE_FACTOR - HEADROOM) * estimate;
        let padding_kbps = match self.carried_kbps {
            Some(carried) => {
                let base = carried.clamp(estimate, PROBE_FACTOR * estimate);
                let sending = self.sent.kbps(SENDING_WINDOW_US).unwrap_or(HEADROOM * estimate);
                (PROBE_FACTOR * base - sending).max(share_padding)
            }
            None => share_padding,
        };
        let padding_total = padding_kbps * CLUSTER_US as f64 / 8_000.0;
        let datagrams = (padding_total / MAX_PADDING_BYTES as f64).ceil() as u8;
        let datagrams = datagrams.clamp(MIN_CLUSTER_DATAGRAMS, MAX_CLUSTER_DATAGRAMS);
        let padding_bytes = (padding_total / f64::from(datagrams)) as usize;
        Some(ProbeCluster {
            id,
            datagrams,
            padding_bytes: padding_bytes.clamp(MIN_PADDING_BYTES, MAX_PADDING_BYTES),
            spacing_us: CLUSTER_US / u64::from(datagrams - 1),
        })
    }

    /// The cluster has left: what the transport had sent at its first and last datagram.
    pub fn on_sent(&mut self, sent: ProbeSent) -> Option<ProbeOutcome> {
        let pending = self.pending.as_mut().filter(|pending| pending.id == sent.id)?;
        pending.sent = Some(sent);
        self.outcome()
    }

    /// The receiver's measure of a cluster.
    pub fn on_result(&mut self, result: ProbeResult) -> Option<ProbeOutcome> {
        let pending = self.pending.as_mut().filter(|pending| pending.id == result.id)?;
        pending.result = Some(result);
        self.outcome()
    }

    /// Once both ends of the pending cluster are known: what it showed.
    fn outcome(&mut self) -> Option<ProbeOutcome> {
        let Pending { sent: Some(sent), result: Some(result), .. } = self.pending? else { return None };
        self.pending = None;
        let span_us = sent.last.0.checked_sub(sent.first.0).filter(|&span| span > 0)?;
        let sent_bytes = sent.last.1.saturating_sub(sent.first.1);
        let mut outcome = ProbeOutcome {
            sent_kbps: sent_bytes as f64 * 8_000.0 / span_us as f64,
            received_kbps: f64::from(result.received_kbps),
            confirmed_kbps: None,
        };
        let before = self.carried_kbps.take();
        if outcome.carried_whole() {
            outcome.confirmed_kbps = before;
            self.carried_kbps = Some(outcome.through_kbps());
            if before.is_some() {
                self.chain_confirmed = true;
                self.burst_fooled = false;
            }
        } else {
            if before.is_some() && !self.chain_confirmed {
                self.burst_fooled = true;
            }
            self.chain_confirmed = false;
        }
        Some(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    fn limited(estimate_kbps: u32) -> ProbeContext {
        ProbeContext { estimate_kbps, link_limited: true, last_cut_us: Some(0), queued: false }
    }

    /// 1 000 kbit/s sent over 50 ms: 6 250 bytes.
    fn sent(id: u16, at_us: u64) -> ProbeSent {
        ProbeSent { id, first: (at_us, 10_000), last: (at_us + 50 * MS, 16_250) }
    }

    #[test]
    fn a_cluster_brings_the_rate_to_15_times_the_estimate_for_50_ms() {
        let mut probes = ProbeController::default();
        let cluster = probes.poll(1_000 * MS, limited(800)).expect("due");
        // 0.6 x 800 kbit/s for 50 ms is 3 000 bytes, in 6 datagrams 10 ms apart.
        assert_eq!(cluster, ProbeCluster { id: 0, datagrams: 6, padding_bytes: 500, spacing_us: 10 * MS });
        let small = ProbeController::default().poll(1_000 * MS, limited(100)).expect("due");
        assert_eq!(small.padding_bytes, MIN_PADDING_BYTES);
    }

    #[test]
    fn within_a_chain_the_padding_makes_up_for_media_under_their_share_and_high_rates_take_more_datagrams() {
        let mut probes = ProbeController::default();
        // The transport sent 300 kbit/s lately: the encoder undershoots its share of 2 000.
        probes.on_transport_sent(700 * MS, 0);
        probes.on_transport_sent(1_000 * MS, 11_250);
        let first = probes.poll(1_000 * MS, limited(2_000)).expect("due");
        // The first: 0.6 x 2 000 kbit/s for 50 ms, 7 500 bytes in 7 datagrams.
        assert_eq!((first.datagrams, first.padding_bytes), (7, 1_071));
        probes.on_sent(ProbeSent { id: first.id, first: (1_000 * MS, 0), last: (1_050 * MS, 10_000) });
        probes.on_result(ProbeResult { id: first.id, received_kbps: 1_700 });
        let second = probes.poll(1_100 * MS, limited(2_000)).expect("at once");
        // 1.5 x 2 000 - 300 = 2 700 kbit/s for 50 ms: 16 875 bytes, in 16 datagrams.
        assert_eq!((second.datagrams, second.padding_bytes, second.spacing_us), (16, 1_054, 3_333));
    }

    #[test]
    fn no_probe_without_a_limit_to_test_or_while_a_queue_drains() {
        let poll = |context| ProbeController::default().poll(5_000 * MS, context);
        assert!(poll(limited(800)).is_some());
        assert_eq!(poll(ProbeContext { link_limited: false, ..limited(800) }), None, "no limit, or at the ceiling");
        assert_eq!(poll(ProbeContext { queued: true, ..limited(800) }), None, "a queue");
        assert_eq!(poll(ProbeContext { last_cut_us: Some(4_500 * MS), ..limited(800) }), None, "just cut");
    }

    #[test]
    fn a_cluster_carried_whole_is_followed_at_once_by_a_faster_one_which_confirms_it() {
        let mut probes = ProbeController::default();
        let first = probes.poll(1_000 * MS, limited(800)).expect("due");
        assert_eq!(probes.poll(1_100 * MS, limited(800)), None, "one at a time");
        assert_eq!(probes.on_sent(sent(first.id, 1_000 * MS)), None, "the result is still to come");
        let outcome = probes.on_result(ProbeResult { id: first.id, received_kbps: 950 }).expect("both ends known");
        assert_eq!(outcome, ProbeOutcome { sent_kbps: 1_000.0, received_kbps: 950.0, confirmed_kbps: None });
        assert!(outcome.carried_whole());
        // At once, at 1.5 x the 950 that went through: 1 425 less the media's 720.
        let second = probes.poll(1_150 * MS, limited(800)).expect("at once");
        assert_eq!(second.id, first.id + 1);
        assert_eq!(second.padding_bytes, 734, "705 kbit/s for 50 ms in 6 datagrams");
        // The result may come before the sender's own record.
        assert_eq!(probes.on_result(ProbeResult { id: second.id, received_kbps: 990 }), None);
        let outcome = probes.on_sent(sent(second.id, 1_150 * MS)).expect("both ends known");
        assert_eq!(outcome.confirmed_kbps, Some(950.0), "carried whole after one that was");
        let third = probes.poll(1_300 * MS, limited(900)).expect("at once");
        probes.on_sent(sent(third.id, 1_300 * MS));
        let outcome = probes.on_result(ProbeResult { id: third.id, received_kbps: 700 }).expect("both ends known");
        assert!(!outcome.carried_whole(), "the path carried 700 of 1 000 kbit/s");
        assert_eq!(outcome.confirmed_kbps, None);
        assert_eq!(probes.poll(2_000 * MS, limited(950)), None);
        assert!(probes.poll(3_300 * MS, limited(950)).is_some(), "two seconds after the last");
    }

    #[test]
    fn after_a_chain_a_burst_carried_the_next_cluster_waits_twice_as_long() {
        let mut probes = ProbeController::default();
        let chain = |probes: &mut ProbeController, at_ms: u64, received: [u32; 2]| {
            for (index, received_kbps) in received.into_iter().enumerate() {
                let at_us = (at_ms + 100 * index as u64) * MS;
                let cluster = probes.poll(at_us, limited(800)).expect("due");
                probes.on_sent(sent(cluster.id, at_us));
                probes.on_result(ProbeResult { id: cluster.id, received_kbps });
            }
        };
        // Whole, then not: a token bucket's leftover burst carried the first.
        chain(&mut probes, 1_000, [1_000, 700]);
        assert_eq!(probes.poll(3_200 * MS, limited(800)), None, "2 s on");
        assert!(probes.poll(5_100 * MS, limited(800)).is_some(), "4 s on");
        // A chain that confirms room (whole twice) and then finds the top: 2 s again.
        let mut probes = ProbeController::default();
        chain(&mut probes, 1_000, [1_000, 700]);
        chain(&mut probes, 5_100, [1_000, 990]);
        let top = probes.poll(5_300 * MS, limited(800)).expect("the chain goes on");
        probes.on_sent(sent(top.id, 5_300 * MS));
        probes.on_result(ProbeResult { id: top.id, received_kbps: 700 });
        assert!(probes.poll(7_300 * MS, limited(800)).is_some(), "2 s on");
        // Not carried whole from the first cluster on: a path with no burst to fool it.
        let mut probes = ProbeController::default();
        let cluster = probes.poll(1_000 * MS, limited(800)).expect("due");
        probes.on_sent(sent(cluster.id, 1_000 * MS));
        probes.on_result(ProbeResult { id: cluster.id, received_kbps: 700 });
        assert!(probes.poll(3_000 * MS, limited(800)).is_some(), "2 s on");
    }

    #[test]
    fn a_lost_result_is_given_up_and_strangers_are_ignored() {
        let mut probes = ProbeController::default();
        let cluster = probes.poll(1_000 * MS, limited(800)).expect("due");
        assert_eq!(probes.on_result(ProbeResult { id: cluster.id + 7, received_kbps: 1 }), None);
        assert_eq!(probes.on_sent(sent(cluster.id + 7, 0)), None);
        assert_eq!(probes.poll(1_900 * MS, limited(800)), None, "still waiting");
        assert_eq!(probes.poll(2_999 * MS, limited(800)), None, "given up, but the last was under 2 s ago");
        assert!(probes.poll(3_000 * MS, limited(800)).is_some());
        // A record with no time between its ends shows nothing.
        let mut probes = ProbeController::default();
        let cluster = probes.poll(1_000 * MS, limited(800)).expect("due");
        probes.on_result(ProbeResult { id: cluster.id, received_kbps: 900 });
        assert_eq!(probes.on_sent(ProbeSent { id: cluster.id, first: (5, 0), last: (5, 9_000) }), None);
    }

    #[test]
    fn results_round_trip_in_six_bytes_and_other_lengths_are_refused() {
        let result = ProbeResult { id: 0xbeef, received_kbps: 123_456 };
        let bytes = result.encode();
        assert_eq!(bytes, [0xbe, 0xef, 0, 1, 0xe2, 0x40]);
        assert_eq!(ProbeResult::decode(&bytes), Some(result));
        for len in [0, 5, 7, 100] {
            assert_eq!(ProbeResult::decode(&vec![0; len]), None);
        }
    }
}
