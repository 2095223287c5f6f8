//! The sender's side of adaptation as one value: the estimator and the policy together,
//! fed the peer's reports and quinn's statistics, answering with the encoder's next
//! target when it changes, and whether the sound goes with redundancy. The call's task owns
//! it; nothing here waits or reads a clock.

use super::audio_redundancy::AudioRedundancy;
use super::estimator::{BandwidthEstimator, EstimateBounds, TransportStats};
use super::pacing;
use super::policy::{Policy, PolicyConfig, Target, VIDEO_FLOOR_KBPS, estimate_for_video_kbps};
use super::report::ReceiverReport;
use super::video_pacer;

/// Video bitrate a call starts at, kbit/s.
const START_VIDEO_KBPS: u32 = 800;

/// See the module documentation.
#[derive(Debug)]
pub struct RateController {
    estimator: BandwidthEstimator,
    policy: Policy,
    redundancy: AudioRedundancy,
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
        Self { estimator, policy, redundancy: AudioRedundancy::default() }
    }

    /// The peer's report arrived at `now_us`.
    pub fn on_report(&mut self, now_us: u64, report: &ReceiverReport) -> Option<Target> {
        self.estimator.on_report(now_us, report);
        self.policy.update(now_us, self.estimator.estimate_kbps())
    }

    /// quinn's path statistics, read at `now_us`.
    pub fn on_transport_stats(&mut self, now_us: u64, stats: &TransportStats) -> Option<Target> {
        self.estimator.on_transport_stats(now_us, stats);
        let queued = self.estimator.queue_delay_us();
        self.redundancy.on_transport_stats(now_us, stats.lost_packets, stats.sent_packets, queued);
        self.policy.update(now_us, self.estimator.estimate_kbps())
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
