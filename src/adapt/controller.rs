//! The sender's side of adaptation as one value: the estimator, the policy and the probe
//! controller together, fed the peer's reports, its measures of our probe clusters and
//! quinn's statistics, answering with the encoder's next target when it changes, whether
//! the sound goes with redundancy, and when to probe. The call's task owns it; nothing here
//! waits or reads a clock.

use super::audio_redundancy::AudioRedundancy;
use super::estimator::{BandwidthEstimator, EstimateBounds, TransportStats};
use super::pacing;
use super::policy::{Policy, PolicyConfig, Target, VIDEO_FLOOR_KBPS, estimate_for_video_kbps};
use super::probe::{ProbeCluster, ProbeContext, ProbeController, ProbeOutcome, ProbeResult, ProbeSent};
use super::report::ReceiverReport;
use super::video_pacer;

/// Video bitrate a call starts at, kbit/s.
const START_VIDEO_KBPS: u32 = 800;

/// What a probe cluster showed, and the encoder's new target if that changed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeNews {
    pub outcome: ProbeOutcome,
    pub target: Option<Target>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct RateController {
    estimator: BandwidthEstimator,
    policy: Policy,
    redundancy: AudioRedundancy,
    probes: ProbeController,
}

impl RateController {
    /// Starts at `START_VIDEO_KBPS` (or the ceiling, if lower) and climbs: like GCC, which
    /// starts at 300 kbit/s, it does not send more than most paths carry before it knows.
    pub fn new(config: PolicyConfig) -> Self {
        let bounds = EstimateBounds {
            floor_kbps: estimate_for_video_kbps(VIDEO_FLOOR_KBPS),
            ceiling_kbps: estimate_for_video_kbps(config.ceiling_kbps),
        };
        let start = estimate_for_video_kbps(config.ceiling_kbps.min(START_VIDEO_KBPS));
        let estimator = BandwidthEstimator::new(bounds, start);
        let policy = Policy::new(config, estimator.estimate_kbps());
        Self { estimator, policy, redundancy: AudioRedundancy::default(), probes: ProbeController::default() }
    }

    /// The peer's report arrived at `now_us`.
    pub fn on_report(&mut self, now_us: u64, report: &ReceiverReport) -> Option<Target> {
        self.estimator.on_report(now_us, report);
        self.policy.update(now_us, self.estimator.estimate_kbps())
    }

    /// quinn's path statistics, read at `now_us`.
    pub fn on_transport_stats(&mut self, now_us: u64, stats: &TransportStats) -> Option<Target> {
        self.estimator.on_transport_stats(now_us, stats);
        self.probes.on_transport_sent(now_us, stats.sent_bytes);
        let queued = self.estimator.queue_delay_us();
        self.redundancy.on_transport_stats(now_us, stats.lost_packets, stats.sent_packets, queued);
        self.policy.update(now_us, self.estimator.estimate_kbps())
    }

    /// The probe cluster to send now, if one is due (see `probe`).
    pub fn poll_probe(&mut self, now_us: u64) -> Option<ProbeCluster> {
        let context = ProbeContext {
            estimate_kbps: self.estimator.estimate_kbps(),
            link_limited: self.estimator.link_limited(),
            last_cut_us: self.estimator.last_cut_us(),
            queued: self.estimator.queue_shows(),
        };
        self.probes.poll(now_us, context)
    }

    /// A probe cluster has left, at `now_us`; what it showed, once the peer's measure is in.
    pub fn on_probe_sent(&mut self, now_us: u64, sent: ProbeSent) -> Option<ProbeNews> {
        let outcome = self.probes.on_sent(sent)?;
        Some(self.on_probe_outcome(now_us, outcome))
    }

    /// The peer's measure of a probe cluster arrived at `now_us`; what the cluster showed,
    /// once its sending is on record.
    pub fn on_probe_result(&mut self, now_us: u64, result: ProbeResult) -> Option<ProbeNews> {
        let outcome = self.probes.on_result(result)?;
        Some(self.on_probe_outcome(now_us, outcome))
    }

    fn on_probe_outcome(&mut self, now_us: u64, outcome: ProbeOutcome) -> ProbeNews {
        self.estimator.on_probe(now_us, &outcome);
        let estimate_kbps = self.estimator.estimate_kbps();
        let target = match outcome.confirmed_kbps {
            Some(_) => self.policy.update_probed(now_us, estimate_kbps),
            None => self.policy.update(now_us, estimate_kbps),
        };
        ProbeNews { outcome, target }
    }

    /// The link came back after a silence at `now_us`.
    pub fn on_link_back(&mut self, now_us: u64) {
        self.estimator.on_link_back(now_us);
        self.redundancy.on_link_back(now_us);
    }

    /// Whether each sound datagram should carry the packet before it too, at `now_us`.
    pub fn audio_redundancy(&self, now_us: u64) -> bool {
        self.redundancy.wanted(now_us)
    }

    /// What the path is estimated to carry, media included, kbit/s.
    pub fn estimate_kbps(&self) -> u32 {
        self.estimator.estimate_kbps()
    }

    /// How many bytes quinn may hold unacknowledged: see `pacing`.
    pub fn send_window_bytes(&self) -> u64 {
        pacing::send_window_bytes(self.estimator.estimate_kbps(), self.estimator.min_rtt_us())
    }

    /// The rate to pace pictures at, if any: see `video_pacer`.
    pub fn video_pacing_kbps(&self) -> Option<u32> {
        video_pacer::pacing_kbps(&self.estimator)
    }

    /// The target in force.
    pub fn target(&self) -> Target {
        self.policy.target()
    }
}
