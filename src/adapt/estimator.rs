//! The sender's bandwidth estimate: how many kbit/s of media (video and audio) the path
//! carries now. GCC as libwebrtc's goog_cc does it (str0m's `docs/BWE.md` describes it),
//! fed the receiver's reports (`ReceiverReport`) and quinn's path statistics:
//!
//! - delay: overuse on the receiver's delay trend (`OveruseDetector`) cuts to 0.85 x the
//!   rate the receiver gets and holds about one round trip; otherwise the estimate grows,
//!   additively while the receiver gets about the rate at which the last cuts happened,
//!   8 %/s otherwise, never beyond 1.5 x the receive rate (GCC's `AimdRateControl`);
//! - loss (quinn's packet counters): above 10 % a limit at (1 - loss/2) x the estimate,
//!   growing again 8 %/s under 2 %; in between it holds (libwebrtc's loss-based control);
//! - transport: never above what quinn's window carries per round trip of the empty path
//!   (cwnd x 8 / the smallest rtt of the last 10 s: BBR's window is twice that product);
//! - a round trip (quinn's) 80 ms above its smallest in two samples running cuts to 0.7 x
//!   the estimate, once until it comes back down: at a sharp drop it shows before the
//!   receiver's reports can;
//! - cuts at most every 300 ms, and always within the floor and the ceiling.
//!
//! Where it leaves GCC, and why:
//! - a rising trend is overuse only with a standing queue of 20 ms or more in two reports
//!   running: on QUIC a lost packet holds back the frames behind it for a round trip,
//!   which looks like a rising trend and a queue for one report; random loss is not
//!   congestion;
//! - a standing queue that grew in three reports running is overuse whatever the trend:
//!   GCC's trendline needs many delay samples and ours are frames, 3 to 30 a second, which
//!   a capacity drop spaces further apart, so the trend alone sees a drop late;
//! - below the rate of the last cuts (or with none known) and with no standing queue, the
//!   estimate jumps so the sender sends (1 + g) x the receive rate, g = 50 ms over the
//!   feedback loop, about 0.19 at 40 ms RTT (NADA's accelerated ramp-up, RFC 8698 4.3:
//!   the extra can build at most 50 ms of queue before the feedback shows it). GCC gets
//!   there by probing with padding, which this sender has not; at 8 %/s alone, going from
//!   0.5 back to 3 Mbit/s takes over 20 s;
//! - the band where growth is additive reaches only 2.5 % above the rate of the last cuts:
//!   when the receiver gets more than that, the path has opened up and the ramp takes over;
//! - silence (reports with no frames: an outage, or nothing sent) changes nothing, and the
//!   losses quinn declares when the path comes back are the silence's, not congestion's:
//!   the send window already stops a queue from growing while nothing drains;
//! - but a report with no frames while bytes still arrive (at least the video floor's
//!   worth) is no silence: it holds the estimate. When quinn's round trip also shows a
//!   queue, and the reports came on time, and no silence ended in the last second, the
//!   frames are held back behind a loss in the bottleneck's full queue and what arrives is
//!   what the path carries: it cuts, as overuse does. At a sharp drop the reports look
//!   like this for a second or two (the frames' own delays come only with the frames),
//!   and taking them for silence left the estimate at 3 times the link that long.

use super::REPORT_INTERVAL_US;
use super::loss_sampler::LossSampler;
use super::overuse::{OveruseDetector, Usage};
use super::policy::VIDEO_FLOOR_KBPS;
use super::probe::ProbeOutcome;
use super::receive_meter::RATE_WINDOW_US;
use super::report::ReceiverReport;
use super::{AUDIO_KBPS, HEADROOM};

/// On overuse, the estimate falls to this fraction of the receive rate (GCC's beta): low
/// enough that the queue drains, high enough to keep most of the rate.
const CUT_TO_RECEIVE_RATE: f64 = 0.85;
/// At most one cut per this long (libwebrtc's 300 ms), so one queue is not paid for twice.
const MIN_CUT_INTERVAL_US: u64 = 300_000;
/// After a cut, hold one round trip (GCC clamps it to 10-200 ms) so the cut can show.
const MIN_HOLD_US: u64 = 10_000;
const MAX_HOLD_US: u64 = 200_000;
/// Growth per second away from the last cuts, or while a standing queue shows (GCC's 1.08).
const GROWTH_PER_S: f64 = 1.08;
/// The estimate grows to at most 1.5 x the receive rate, plus 10 kbit/s so an encoder that
/// undershoots at low rates cannot pin it (GCC).
const MAX_TO_RECEIVE_RATE: f64 = 1.5;
const RECEIVE_SLACK_KBPS: f64 = 10.0;
/// While the receiver gets from 5 % under the rate at which cuts happened to 2.5 % over it,
/// the path is near its capacity: grow additively. Beyond, that capacity is gone. (GCC's
/// band is three standard deviations of those rates; narrow above, so a path that opens up
/// is found within a second or two.)
const BELOW_CAPACITY: f64 = 0.05;
const ABOVE_CAPACITY: f64 = 0.025;
/// Weight of the past when a cut's receive rate updates the capacity (inside the band).
const CAPACITY_SMOOTHING: f64 = 0.7;
/// The additive step is half a full packet per response time (GCC), in kbit.
const ADDITIVE_KBIT: f64 = 0.5 * 1200.0 * 8.0 / 1000.0;
/// Response time = round trip + this (GCC's 100 ms).
const RESPONSE_EXTRA_US: u64 = 100_000;
/// A standing queue under this is no queue (NADA counts 10 ms; the receiver's measure also
/// holds a frame's own sending time, 8 kB take 21 ms at 3 Mbit/s, and jitter): overuse on
/// the trend needs at least this much in two reports running, the accelerated ramp-up less.
const STANDING_QUEUE_MS: u16 = 20;
/// A standing queue that grew in this many reports running is overuse whatever the trend.
const GROWING_QUEUE_REPORTS: u32 = 3;
/// The smallest round trip is remembered this long (BBR's 10 s), then measured afresh.
const MIN_RTT_WINDOW_US: u64 = 10_000_000;
/// The accelerated ramp-up may build at most this much queue in one feedback loop (NADA).
const RAMP_QUEUE_BOUND_US: f64 = 50_000.0;
/// ... and never asks for more than 1.5 x the receive rate (NADA's largest gain).
const MAX_RAMP_GAIN: f64 = 0.5;
/// Below 2 % loss the loss limit grows again; above 10 % it cuts (libwebrtc).
const LOSS_GROW_BELOW: f64 = 0.02;
const LOSS_CUT_ABOVE: f64 = 0.10;
/// quinn's smoothed round trip this far above the smallest lately, in two samples running,
/// is a queue: cut by `RTT_CUT`, once, until the round trip comes back down. At a sharp
/// drop the receiver's reports come late (they wait in the reverse path's queue, and a lost
/// packet holds back the control stream), while the round trip rises from the first
/// packets. Once only: the round trip also holds the reverse path's queue, which this
/// sender cannot drain (cutting on every sample took a 500 kbit/s link's estimate to the
/// floor); the reports take it from there. Above the send window's 60 ms budget, so a
/// queue the window allows is not cut for.
const RTT_QUEUE_US: u64 = 80_000;
const RTT_CUT: f64 = 0.7;
/// Reports further apart than this had a silence between them (those sent in it were lost).
const REPORT_GAP_US: u64 = 3 * REPORT_INTERVAL_US;
/// Round trip assumed before quinn has measured one.
const DEFAULT_RTT_US: u64 = 100_000;

/// quinn's path statistics, as `Connection::stats().path` gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Smoothed round trip time (`rtt`), ms.
    pub rtt_ms: u32,
    /// Congestion window (`cwnd`), bytes.
    pub cwnd_bytes: u64,
    /// Packets declared lost since the connection started (`lost_packets`).
    pub lost_packets: u64,
    /// Packets sent since the connection started (`sent_packets`).
    pub sent_packets: u64,
    /// UDP payload bytes sent since the connection started (`udp_tx.bytes`).
    pub sent_bytes: u64,
}

/// The range the estimate stays in, kbit/s of media (see `policy::estimate_for_video_kbps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EstimateBounds {
    /// Lowest estimate: the video floor and audio.
    pub floor_kbps: u32,
    /// Highest estimate: more would never be used (the user's `--bitrate` and audio).
    pub ceiling_kbps: u32,
}

/// See the module documentation.
#[derive(Debug)]
pub struct BandwidthEstimator {
    floor_kbps: f64,
    ceiling_kbps: f64,
    delay_based_kbps: f64,
    loss_limit_kbps: Option<f64>,
    transport_limit_kbps: Option<f64>,
    detector: OveruseDetector,
    loss: LossSampler,
    /// Receive rate at recent cuts: the path's capacity as last seen.
    capacity_kbps: Option<f64>,
    /// The bottleneck's rate as the last probe cluster measured it, if that was not carried
    /// whole: the estimate grows no further until probes find more.
    probed_capacity_kbps: Option<f64>,
    /// What the receiver got by its last report, sound included.
    last_receive_kbps: f64,
    rtt_us: u64,
    /// The smallest round trip lately, and when it was measured.
    min_rtt: Option<(u64, u64)>,
    previous_queuing_delay_ms: u16,
    /// Reports running in which a standing queue grew.
    growing_queue_reports: u32,
    last_cut_us: Option<u64>,
    /// When the last report arrived.
    last_report_us: Option<u64>,
    hold_until_us: u64,
    last_increase_us: Option<u64>,
    last_loss_sample_us: Option<u64>,
    /// Transport samples running with the round trip `RTT_QUEUE_US` above its smallest.
    rtt_queue_samples: u32,
    /// The round trip has cut since it was last below `RTT_QUEUE_US` above its smallest.
    rtt_cut_done: bool,
}

impl BandwidthEstimator {
    /// An estimator starting at `start_kbps` (within the bounds).
    pub fn new(bounds: EstimateBounds, start_kbps: u32) -> Self {
        let floor_kbps = f64::from(bounds.floor_kbps);
        let ceiling_kbps = f64::from(bounds.ceiling_kbps).max(floor_kbps);
        Self {
            floor_kbps,
            ceiling_kbps,
            delay_based_kbps: f64::from(start_kbps).clamp(floor_kbps, ceiling_kbps),
            loss_limit_kbps: None,
            transport_limit_kbps: None,
            detector: OveruseDetector::default(),
            loss: LossSampler::default(),
            capacity_kbps: None,
            probed_capacity_kbps: None,
            last_receive_kbps: 0.0,
            rtt_us: DEFAULT_RTT_US,
            min_rtt: None,
            previous_queuing_delay_ms: 0,
            growing_queue_reports: 0,
            last_cut_us: None,
            last_report_us: None,
            hold_until_us: 0,
            last_increase_us: None,
            last_loss_sample_us: None,
            rtt_queue_samples: 0,
            rtt_cut_done: false,
        }
    }

    /// The smallest round trip lately (the default before quinn measured one), µs.
    pub fn min_rtt_us(&self) -> u64 {
        self.min_rtt.map_or(self.rtt_us, |(min_us, _)| min_us)
    }

    /// How far quinn's round trip is above its smallest lately, µs: the queue on the path.
    pub fn queue_delay_us(&self) -> u64 {
        self.rtt_us.saturating_sub(self.min_rtt_us())
    }

    /// The estimate, kbit/s of media.
    pub fn estimate_kbps(&self) -> u32 {
        let limits = [self.loss_limit_kbps, self.transport_limit_kbps];
        let estimate = limits.into_iter().flatten().fold(self.delay_based_kbps, f64::min);
        estimate.clamp(self.floor_kbps, self.ceiling_kbps).round() as u32
    }

    /// Whether the link holds the call down: the estimate has been cut at least once and is
    /// below its ceiling. (Climbing from its start before any cut, it knows no limit.)
    pub fn link_limited(&self) -> bool {
        self.last_cut_us.is_some() && f64::from(self.estimate_kbps()) < self.ceiling_kbps.round()
    }

    /// When the estimate was last cut.
    pub fn last_cut_us(&self) -> Option<u64> {
        self.last_cut_us
    }

    /// Whether a queue shows: quinn's round trip, or the receiver's standing queue in its
    /// last report, at least `STANDING_QUEUE_MS` above the path's own.
    pub fn queue_shows(&self) -> bool {
        self.queue_delay_us() >= u64::from(STANDING_QUEUE_MS) * 1_000
            || self.previous_queuing_delay_ms >= STANDING_QUEUE_MS
    }

    /// What a probe cluster showed (`probe`). Not carried whole, what arrived is the
    /// bottleneck's rate: the capacity, which the estimate does not exceed until clusters
    /// find more. But never above the capacity the cuts found: through a token bucket the
    /// cluster that empties the bucket is partly carried by its burst and reads high (1.24
    /// to 1.38 Mbit/s on the 1 Mbit/s tbf link), and the ramp-up then climbed to just under
    /// that every time. A cluster that lost packets reads low, so a reading is never below what a
    /// cut would leave (0.85 x what the receiver reported getting). (Keeping the least
    /// reading of the last 10 s took a token bucket's leftover burst out of the readings,
    /// but one low reading just after a drop held a 0.5 Mbit/s call at 240 kbit/s that
    /// long.) Carried whole and confirming the cluster before it, the path has room: the
    /// capacities known are gone, and the estimate rises to just under what went through
    /// the cluster before (GCC's 0.95: what arrived also holds the transport's overhead).
    /// One cluster carried whole changes nothing yet: a token bucket's burst may have
    /// carried it.
    pub fn on_probe(&mut self, now_us: u64, outcome: &ProbeOutcome) {
        if !outcome.carried_whole() {
            let probed = outcome.received_kbps.max(CUT_TO_RECEIVE_RATE * self.last_receive_kbps);
            self.capacity_kbps = Some(self.capacity_kbps.map_or(probed, |capacity| capacity.min(probed)));
            self.probed_capacity_kbps = Some(probed);
            self.delay_based_kbps = self.delay_based_kbps.min(probed).max(self.floor_kbps);
        } else if let Some(confirmed) = outcome.confirmed_kbps {
            self.capacity_kbps = None;
            self.probed_capacity_kbps = None;
            let raised = self.delay_based_kbps.max((1.0 - BELOW_CAPACITY) * confirmed);
            self.delay_based_kbps = raised.clamp(self.floor_kbps, self.ceiling_kbps);
            self.last_increase_us = Some(now_us);
        }
    }

    /// Takes a report from the receiver, at the time it arrived.
    pub fn on_report(&mut self, now_us: u64, report: &ReceiverReport) {
        let receive_kbps = f64::from(report.receive_kbps) + f64::from(AUDIO_KBPS);
        self.last_receive_kbps = receive_kbps;
        let after_a_gap =
            self.last_report_us.replace(now_us).is_some_and(|last| now_us.saturating_sub(last) > REPORT_GAP_US);
        if after_a_gap {
            self.loss.silence(now_us);
        }
        if report.frames_received == 0 {
            self.last_increase_us = None;
            if report.receive_kbps < VIDEO_FLOOR_KBPS {
                self.loss.silence(now_us);
            } else if self.queue_delay_us() >= RTT_QUEUE_US && !self.loss.just_after_silence(now_us) {
                self.cut_for_delay(now_us, receive_kbps);
            }
            return;
        }
        let queue_grows =
            report.queuing_delay_ms >= STANDING_QUEUE_MS && report.queuing_delay_ms > self.previous_queuing_delay_ms;
        self.growing_queue_reports = if queue_grows { self.growing_queue_reports + 1 } else { 0 };
        let standing_queue = report.queuing_delay_ms.min(self.previous_queuing_delay_ms) >= STANDING_QUEUE_MS;
        self.previous_queuing_delay_ms = report.queuing_delay_ms;
        let usage = match self.detector.update(now_us, report.delay_trend_us_per_s) {
            _ if self.growing_queue_reports >= GROWING_QUEUE_REPORTS => Usage::Overuse,
            Usage::Overuse if !standing_queue => Usage::Normal,
            usage => usage,
        };
        match usage {
            Usage::Overuse => self.cut_for_delay(now_us, receive_kbps),
            Usage::Normal if now_us >= self.hold_until_us => self.increase(now_us, receive_kbps, report),
            Usage::Normal | Usage::Underuse => self.last_increase_us = Some(now_us),
        }
    }

    /// The link came back after a silence (see `liveness`): the losses quinn declares now
    /// are the silence's, even when no report said the peer got nothing.
    pub fn on_link_back(&mut self, now_us: u64) {
        self.last_increase_us = None;
        self.loss.silence(now_us);
    }

    /// Takes quinn's path statistics (every 100 ms or so).
    pub fn on_transport_stats(&mut self, now_us: u64, stats: &TransportStats) {
        if stats.rtt_ms > 0 {
            self.rtt_us = u64::from(stats.rtt_ms) * 1000;
            let min_rtt = match self.min_rtt {
                Some((min_us, at_us)) if min_us <= self.rtt_us && now_us < at_us + MIN_RTT_WINDOW_US => (min_us, at_us),
                _ => (self.rtt_us, now_us),
            };
            self.min_rtt = Some(min_rtt);
            self.transport_limit_kbps = Some(stats.cwnd_bytes as f64 * 8_000.0 / min_rtt.0 as f64);
            let queued = self.rtt_us.saturating_sub(min_rtt.0) >= RTT_QUEUE_US;
            self.rtt_queue_samples = if queued { self.rtt_queue_samples + 1 } else { 0 };
            self.rtt_cut_done &= queued;
            if self.rtt_queue_samples >= 2 && !self.rtt_cut_done && self.may_cut(now_us) {
                self.rtt_cut_done = true;
                self.delay_based_kbps = (self.delay_based_kbps * RTT_CUT).clamp(self.floor_kbps, self.ceiling_kbps);
                self.last_cut_us = Some(now_us);
                self.last_increase_us = Some(now_us);
                self.hold_until_us = now_us + self.rtt_us.clamp(MIN_HOLD_US, MAX_HOLD_US);
            }
        }
        let Some(loss) = self.loss.sample(now_us, stats.lost_packets, stats.sent_packets) else {
            return;
        };
        let elapsed_s = seconds_since(self.last_loss_sample_us, now_us);
        self.last_loss_sample_us = Some(now_us);
        if loss > LOSS_CUT_ABOVE {
            if self.may_cut(now_us) {
                self.loss_limit_kbps = Some(f64::from(self.estimate_kbps()) * (1.0 - loss / 2.0));
                self.last_cut_us = Some(now_us);
            }
        } else if loss < LOSS_GROW_BELOW
            && let Some(limit) = self.loss_limit_kbps
        {
            let grown = limit * GROWTH_PER_S.powf(elapsed_s);
            self.loss_limit_kbps = (grown < self.delay_based_kbps).then_some(grown);
        }
    }

    fn may_cut(&self, now_us: u64) -> bool {
        self.last_cut_us.is_none_or(|last| now_us >= last.saturating_add(MIN_CUT_INTERVAL_US))
    }

    fn cut_for_delay(&mut self, now_us: u64, receive_kbps: f64) {
        self.last_increase_us = Some(now_us);
        if !self.may_cut(now_us) {
            return;
        }
        self.capacity_kbps = Some(match self.capacity_kbps {
            Some(capacity) if (receive_kbps - capacity).abs() <= capacity * BELOW_CAPACITY => {
                CAPACITY_SMOOTHING * capacity + (1.0 - CAPACITY_SMOOTHING) * receive_kbps
            }
            _ => receive_kbps,
        });
        let cut = self.delay_based_kbps.min(CUT_TO_RECEIVE_RATE * receive_kbps);
        self.delay_based_kbps = cut.clamp(self.floor_kbps, self.ceiling_kbps);
        self.last_cut_us = Some(now_us);
        self.hold_until_us = now_us + self.rtt_us.clamp(MIN_HOLD_US, MAX_HOLD_US);
    }

    fn increase(&mut self, now_us: u64, receive_kbps: f64, report: &ReceiverReport) {
        let elapsed_s = seconds_since(self.last_increase_us, now_us);
        self.last_increase_us = Some(now_us);
        if self.capacity_kbps.is_some_and(|capacity| receive_kbps > capacity * (1.0 + ABOVE_CAPACITY)) {
            // The path carried more than it did at the last cuts: that capacity is gone.
            self.capacity_kbps = None;
        }
        let current = self.delay_based_kbps;
        let near_capacity =
            self.capacity_kbps.is_some_and(|capacity| receive_kbps >= capacity * (1.0 - BELOW_CAPACITY));
        let mut next = if near_capacity {
            let response_s = (self.rtt_us + RESPONSE_EXTRA_US) as f64 / 1e6;
            current + ADDITIVE_KBIT / response_s * elapsed_s
        } else {
            let grown = current * GROWTH_PER_S.powf(elapsed_s);
            if report.queuing_delay_ms < STANDING_QUEUE_MS {
                // NADA: have the sender send (1 + g) x what arrives, but no more than the
                // path carried at the last cuts; the sender uses HEADROOM of the estimate.
                let ramp_kbps = (1.0 + self.ramp_gain()) * receive_kbps;
                let ramp_kbps =
                    self.capacity_kbps.map_or(ramp_kbps, |capacity| ramp_kbps.min(capacity * (1.0 - BELOW_CAPACITY)));
                grown.max(ramp_kbps / HEADROOM)
            } else {
                grown
            }
        };
        let receive_limit = MAX_TO_RECEIVE_RATE * receive_kbps + RECEIVE_SLACK_KBPS;
        if next > receive_limit {
            next = current.max(receive_limit);
        }
        if let Some(probed) = self.probed_capacity_kbps {
            next = next.min(current.max(probed));
        }
        self.delay_based_kbps = next.clamp(self.floor_kbps, self.ceiling_kbps);
    }

    /// One turn of the feedback loop: a round trip, a report interval and half the
    /// receiver's rate window, before a rate change shows in a report.
    fn feedback_loop_us(&self) -> u64 {
        self.rtt_us + REPORT_INTERVAL_US + RATE_WINDOW_US / 2
    }

    /// NADA's ramp-up gain: the share of extra rate per feedback loop that builds at most
    /// `RAMP_QUEUE_BOUND_US` of queue before the loop can see it.
    fn ramp_gain(&self) -> f64 {
        (RAMP_QUEUE_BOUND_US / self.feedback_loop_us() as f64).min(MAX_RAMP_GAIN)
    }
}

/// Seconds from `since` to `now_us`, at most one (a longer pause is not growth time).
fn seconds_since(since: Option<u64>, now_us: u64) -> f64 {
    since.map_or(0.0, |since| now_us.saturating_sub(since).min(1_000_000) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;
    const BOUNDS: EstimateBounds = EstimateBounds { floor_kbps: 160, ceiling_kbps: 2_156 };

    fn report(receive_kbps: u32, delay_trend_us_per_s: i32, queuing_delay_ms: u16) -> ReceiverReport {
        ReceiverReport {
            receive_kbps,
            delay_trend_us_per_s,
            queuing_delay_ms,
            interval_ms: 100,
            frames_received: 3,
            frames_lost: 0,
        }
    }

    fn stats(lost_packets: u64, sent_packets: u64) -> TransportStats {
        TransportStats { rtt_ms: 40, cwnd_bytes: 1 << 20, lost_packets, sent_packets, sent_bytes: 0 }
    }

    fn rtt(rtt_ms: u32) -> TransportStats {
        TransportStats { rtt_ms, ..stats(0, 0) }
    }

    /// A report with no frames while `receive_kbps` arrive.
    fn held_back(receive_kbps: u32) -> ReceiverReport {
        ReceiverReport { frames_received: 0, receive_kbps, ..report(0, 0, 0) }
    }

    /// Feeds the same report every 100 ms for a second from `now`; returns the estimate.
    fn one_second(estimator: &mut BandwidthEstimator, now: &mut u64, report: ReceiverReport) -> u32 {
        for _ in 0..10 {
            *now += 100 * MS;
            estimator.on_report(*now, &report);
        }
        estimator.estimate_kbps()
    }

    #[test]
    fn overuse_with_a_standing_queue_cuts_to_085_of_the_receive_rate_and_holds() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_report(0, &report(460, 300_000, 200));
        assert_eq!(estimator.estimate_kbps(), 2_000, "one report above the threshold is not yet overuse");
        estimator.on_report(100 * MS, &report(460, 300_000, 300));
        assert_eq!(estimator.estimate_kbps(), 425, "0.85 x (460 + 40 of audio)");
        estimator.on_report(200 * MS, &report(300, 300_000, 350));
        assert_eq!(estimator.estimate_kbps(), 425, "no second cut within 300 ms");
        estimator.on_report(300 * MS, &report(460, -300_000, 200));
        assert_eq!(estimator.estimate_kbps(), 425, "draining: hold");
    }

    #[test]
    fn frames_held_back_while_bytes_arrive_through_a_queue_cut_to_what_arrives() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_report(0, &report(1_700, 0, 0));
        let before = estimator.estimate_kbps();
        estimator.on_transport_stats(0, &rtt(40));
        estimator.on_report(100 * MS, &held_back(400));
        assert_eq!(estimator.estimate_kbps(), before, "no queue on the round trip: the sender may be idle");
        estimator.on_transport_stats(200 * MS, &rtt(400));
        estimator.on_report(200 * MS, &held_back(400));
        assert_eq!(estimator.estimate_kbps(), 374, "0.85 x (400 + 40 of audio)");
    }

    #[test]
    fn frames_held_back_just_after_a_silence_are_the_silences() {
        // Reports flowing, then a queue on the round trip, which cuts once by itself.
        let queued = || {
            let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
            estimator.on_transport_stats(0, &rtt(40));
            estimator.on_report(0, &report(1_700, 0, 0));
            estimator.on_transport_stats(100 * MS, &rtt(400));
            estimator.on_transport_stats(200 * MS, &rtt(400));
            let after_rtt_cut = estimator.estimate_kbps();
            (estimator, after_rtt_cut)
        };
        let (mut estimator, after_rtt_cut) = queued();
        estimator.on_report(300 * MS, &held_back(60));
        estimator.on_report(400 * MS, &held_back(400));
        assert_eq!(estimator.estimate_kbps(), after_rtt_cut, "sound and acknowledgements alone: silence");
        let (mut estimator, after_rtt_cut) = queued();
        // The reports sent during an outage were lost: the next comes 2 s late.
        estimator.on_report(2_000 * MS, &held_back(400));
        estimator.on_report(2_100 * MS, &held_back(400));
        assert_eq!(estimator.estimate_kbps(), after_rtt_cut, "a report gap is a silence");
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_transport_stats(0, &rtt(40));
        estimator.on_report(0, &report(1_700, 0, 0));
        let before = estimator.estimate_kbps();
        estimator.on_link_back(50 * MS);
        estimator.on_report(100 * MS, &held_back(400));
        assert_eq!(estimator.estimate_kbps(), before, "the link just came back");
    }

    #[test]
    fn losses_declared_when_the_link_comes_back_are_not_congestion() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_transport_stats(0, &stats(0, 1_000));
        estimator.on_transport_stats(100 * MS, &stats(0, 1_100));
        // Two silent seconds, no report got through; then quinn declares their packets lost.
        estimator.on_link_back(2_100 * MS);
        for i in 0..5 {
            estimator.on_transport_stats((2_200 + i * 100) * MS, &stats(300 + i * 50, 1_400 + i * 100));
        }
        assert_eq!(estimator.estimate_kbps(), 2_000);
    }

    #[test]
    fn a_round_trip_well_above_its_smallest_cuts_once_until_it_comes_down() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_transport_stats(0, &rtt(40));
        estimator.on_transport_stats(100 * MS, &rtt(130));
        assert_eq!(estimator.estimate_kbps(), 2_000, "one sample is not yet a queue");
        estimator.on_transport_stats(200 * MS, &rtt(250));
        assert_eq!(estimator.estimate_kbps(), 1_400);
        estimator.on_transport_stats(300 * MS, &rtt(300));
        assert_eq!(estimator.estimate_kbps(), 1_400, "no second cut within 300 ms");
        estimator.on_transport_stats(500 * MS, &rtt(300));
        assert_eq!(estimator.estimate_kbps(), 1_400, "the reverse path's queue may hold it up: once only");
        estimator.on_transport_stats(600 * MS, &rtt(110));
        estimator.on_transport_stats(900 * MS, &rtt(110));
        assert_eq!(estimator.estimate_kbps(), 1_400, "70 ms over the smallest is within the window's budget");
        estimator.on_transport_stats(1_000 * MS, &rtt(200));
        estimator.on_transport_stats(1_100 * MS, &rtt(200));
        assert_eq!(estimator.estimate_kbps(), 980, "a new queue, a new cut");
    }

    fn probed(sent_kbps: f64, received_kbps: f64, confirmed_kbps: Option<f64>) -> ProbeOutcome {
        ProbeOutcome { sent_kbps, received_kbps, confirmed_kbps }
    }

    #[test]
    fn a_probe_not_carried_whole_caps_the_estimate_at_what_arrived() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 1_500);
        estimator.on_probe(0, &probed(1_800.0, 1_100.0, None));
        assert_eq!(estimator.estimate_kbps(), 1_100, "down to what the bottleneck passed");
        let mut now = 100 * MS;
        for _ in 0..5 {
            one_second(&mut estimator, &mut now, report(900, 0, 0));
        }
        assert_eq!(estimator.estimate_kbps(), 1_100, "no growth beyond it");
    }

    #[test]
    fn a_probe_reading_is_never_below_what_a_cut_would_leave() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 1_500);
        estimator.on_report(0, &report(860, 0, 0));
        estimator.on_probe(0, &probed(1_800.0, 300.0, None));
        assert_eq!(estimator.estimate_kbps(), 765, "a cluster that lost packets reads low: 0.85 x 900");
        estimator.on_probe(100 * MS, &probed(1_800.0, 1_200.0, None));
        let mut now = 100 * MS;
        for _ in 0..5 {
            one_second(&mut estimator, &mut now, report(1_000, 0, 0));
        }
        assert_eq!(estimator.estimate_kbps(), 1_200, "the next reading lets it grow that far");
    }

    #[test]
    fn a_probe_reading_above_the_capacity_the_cuts_found_does_not_raise_it() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 1_500);
        // Overuse at 900 kbit/s received: the capacity, and a cut to 0.85 x 940.
        estimator.on_report(0, &report(900, 0, 30));
        estimator.on_report(100 * MS, &report(900, 0, 40));
        estimator.on_report(200 * MS, &report(900, 0, 50));
        assert_eq!(estimator.estimate_kbps(), 799);
        // A cluster that emptied a token bucket reads 1 300 kbit/s.
        estimator.on_probe(300 * MS, &probed(1_900.0, 1_300.0, None));
        let mut now = 1_300 * MS;
        let grown = one_second(&mut estimator, &mut now, report(780, 0, 0));
        // The ramp-up jumps to just under the capacity the cuts found (0.95 x 940 over
        // HEADROOM: 992) and grows 8 %/s from there; taking the reading for the capacity,
        // it reached 1 127.
        assert_eq!(grown, 1_063);
    }

    #[test]
    fn two_probes_carried_whole_in_a_row_raise_the_estimate_and_lift_the_cap() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 500);
        estimator.on_probe(0, &probed(600.0, 500.0, None));
        estimator.on_probe(100 * MS, &probed(750.0, 745.0, None));
        assert_eq!(estimator.estimate_kbps(), 500, "one cluster carried whole changes nothing: a burst may have");
        estimator.on_probe(200 * MS, &probed(1_120.0, 1_110.0, Some(745.0)));
        assert_eq!(estimator.estimate_kbps(), 708, "0.95 x the 745 the first carried");
        let mut now = 200 * MS;
        assert!(one_second(&mut estimator, &mut now, report(700, 0, 0)) > 708, "the cap is gone");
    }

    #[test]
    fn a_rising_trend_without_a_standing_queue_is_not_overuse() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        // A retransmission holds the frames of one report back now and then.
        for i in 0..20 {
            estimator.on_report(i * 100 * MS, &report(1_800, 300_000, if i % 2 == 0 { 40 } else { 5 }));
        }
        assert!(estimator.estimate_kbps() >= 2_000);
    }

    #[test]
    fn a_queue_that_keeps_growing_is_overuse_whatever_the_trend() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_report(0, &report(960, 0, 30));
        estimator.on_report(100 * MS, &report(960, 0, 60));
        assert_eq!(estimator.estimate_kbps(), 2_000);
        estimator.on_report(200 * MS, &report(960, 0, 90));
        assert_eq!(estimator.estimate_kbps(), 850);
    }

    #[test]
    fn after_a_cut_it_ramps_back_then_creeps_up_near_the_capacity_and_grows_beyond() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_report(0, &report(960, 300_000, 100));
        estimator.on_report(100 * MS, &report(960, 300_000, 100));
        assert_eq!(estimator.estimate_kbps(), 850, "cut to 0.85 x 1 000: the capacity");
        // Well under the capacity, no queue: straight back to sending 95 % of it (at 0.9 of
        // the estimate), then 8 % a second.
        estimator.on_report(200 * MS, &report(800, 0, 0));
        assert_eq!(estimator.estimate_kbps(), 1_056);
        let mut now = 200 * MS;
        let far = one_second(&mut estimator, &mut now, report(800, 0, 0));
        assert_eq!(far, (1_055.6 * 1.08f64).round() as u32);
        // Near it: half a packet per response time (100 ms default RTT + 100 ms), 24 kbit/s a second.
        let near = one_second(&mut estimator, &mut now, report(930, 0, 0));
        assert!((22..=26).contains(&(near - far)), "additive: {far} -> {near}");
        // The receiver gets more than the capacity: it is gone. With a standing queue, 8 % a second.
        let beyond = one_second(&mut estimator, &mut now, report(1_100, 0, 30));
        let grown = f64::from(beyond) / f64::from(near);
        assert!((1.075..1.09).contains(&grown), "multiplicative: {grown}");
    }

    #[test]
    fn with_no_queue_and_no_known_capacity_it_ramps_from_the_receive_rate() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 400);
        estimator.on_transport_stats(0, &stats(0, 0));
        estimator.on_report(100 * MS, &report(500, 0, 0));
        // g = 50 ms / (40 + 100 + 125 ms): the sender is to send 1.19 x (500 + 40), at 0.9 of the estimate.
        assert_eq!(estimator.estimate_kbps(), 713);
        // Never beyond 1.5 x the receive rate plus 10, but a higher estimate is not pulled down.
        let mut estimator = BandwidthEstimator::new(BOUNDS, 400);
        let mut now = 0;
        for _ in 0..10 {
            one_second(&mut estimator, &mut now, report(60, 0, 0));
        }
        assert_eq!(estimator.estimate_kbps(), 400);
        let mut estimator = BandwidthEstimator::new(BOUNDS, 160);
        for _ in 0..10 {
            one_second(&mut estimator, &mut now, report(160, 0, 0));
        }
        assert_eq!(estimator.estimate_kbps(), 310, "1.5 x 200 + 10");
    }

    #[test]
    fn loss_above_10_percent_cuts_under_2_grows_between_holds() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_transport_stats(0, &stats(0, 0));
        estimator.on_transport_stats(500 * MS, &stats(20, 100));
        assert_eq!(estimator.estimate_kbps(), 1_800, "20 % loss: x 0.9");
        estimator.on_transport_stats(1_000 * MS, &stats(25, 200));
        assert_eq!(estimator.estimate_kbps(), 1_800, "5 %: hold");
        estimator.on_transport_stats(1_500 * MS, &stats(26, 300));
        assert_eq!(estimator.estimate_kbps(), 1_871, "1 %: 8 % a second for half a second");
    }

    #[test]
    fn random_loss_of_2_percent_does_not_move_it() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        let mut state = 7u64;
        let (mut sent, mut lost) = (0, 0);
        for i in 0..600 {
            for _ in 0..20 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                sent += 1;
                lost += u64::from((state >> 33) % 100 < 2);
            }
            estimator.on_transport_stats(i * 100 * MS, &stats(lost, sent));
        }
        assert_eq!(estimator.estimate_kbps(), 2_000);
    }

    #[test]
    fn silence_holds_and_the_losses_it_causes_are_forgiven() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        estimator.on_transport_stats(0, &stats(0, 0));
        let silent = ReceiverReport { frames_received: 0, receive_kbps: 0, ..report(0, 0, 0) };
        for i in 1..=20 {
            estimator.on_report(i * 100 * MS, &silent);
            estimator.on_transport_stats(i * 100 * MS, &stats(0, 10 * i));
        }
        assert_eq!(estimator.estimate_kbps(), 2_000);
        // The path is back: quinn declares everything sent during the silence lost at once.
        estimator.on_transport_stats(2_100 * MS, &stats(200, 400));
        estimator.on_transport_stats(2_700 * MS, &stats(200, 500));
        assert_eq!(estimator.estimate_kbps(), 2_000);
    }

    #[test]
    fn the_transport_window_over_the_empty_round_trip_and_the_bounds_limit_it() {
        let mut estimator = BandwidthEstimator::new(BOUNDS, 2_000);
        let window = |rtt_ms, cwnd_bytes| TransportStats { rtt_ms, cwnd_bytes, ..stats(0, 0) };
        estimator.on_transport_stats(0, &window(80, 10_000));
        assert_eq!(estimator.estimate_kbps(), 1_000, "10 kB per 80 ms");
        estimator.on_transport_stats(100 * MS, &window(40, 10_000));
        estimator.on_transport_stats(200 * MS, &window(200, 10_000));
        assert_eq!(estimator.estimate_kbps(), 2_000, "a queue does not shrink the empty path's 40 ms");
        estimator.on_transport_stats(300 * MS, &window(40, 100));
        assert_eq!(estimator.estimate_kbps(), 160, "the floor");
        assert_eq!(BandwidthEstimator::new(BOUNDS, 9_000).estimate_kbps(), 2_156, "the ceiling");
    }
}
