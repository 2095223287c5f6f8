//! The call's shell around the adaptation core (`adapt`): every 100 ms it reads quinn's
//! statistics and the receive meter, feeds the pure state machines, and carries out what
//! they decide: a report to the peer, a new target for the encoder, quinn's send window,
//! the pictures' pacing rate, redundant sound, a probe cluster, "reconnecting…", a fresh
//! socket for the caller while the link stays silent, and a fresh video group when the
//! link comes back.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use quinn::{Connection, ConnectionStats, Endpoint};
use tokio::sync::{mpsc, watch};

use crate::adapt::controller::{ProbeNews, RateController};
use crate::adapt::estimator::TransportStats;
use crate::adapt::liveness::{LinkChange, Liveness};
use crate::adapt::probe::{ProbeResult, ProbeSent};
use crate::adapt::receive_meter::ReceiveMeter;
use crate::adapt::report::ReceiverReport;
use crate::media::adaptive_encoder::Target;
use crate::net::datagrams::{send_probe, send_report};
use crate::stats::CallStats;

/// What a tick changed that the call shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Nothing,
    /// The peer went quiet: show "reconnecting…" now rather than at the next status line.
    Reconnecting,
}

/// See the module documentation.
pub struct Adaptation {
    /// `None` with `--no-adapt`: the first target holds and quinn's window stays large.
    pub controller: Option<RateController>,
    pub liveness: Liveness,
    pub meter: Arc<Mutex<ReceiveMeter>>,
    /// The encoder's target.
    pub retarget: watch::Sender<Target>,
    /// Counts restarts of the video group (see `video_out`).
    pub restart: watch::Sender<u64>,
    /// Counts the link's returns after outages, for the decoder (see `media::freshness`).
    pub link_back: watch::Sender<u64>,
    /// Whether our sound datagrams carry the packet before them too (see `net::datagrams`).
    pub audio_redundancy: watch::Sender<bool>,
    /// The rate to pace our pictures at, if any (see `net::video_out`).
    pub video_pacing: watch::Sender<Option<u32>>,
    /// Where a probe cluster's sending task says what it sent (see `net::datagrams::send_probe`).
    pub probes_sent: mpsc::Sender<ProbeSent>,
    pub stats: Arc<CallStats>,
    /// UDP datagrams received at the last tick.
    pub datagrams_seen: u64,
    /// The caller's endpoint, moved to a fresh socket when the link stays silent.
    pub rebinds: Option<Endpoint>,
}

impl Adaptation {
    /// Before the first picture, at `now_us`: the controller's start, and a send window to
    /// match. The window is sized from the round trip the handshake measured, not the
    /// estimator's default of 100 ms (19 kB at the start rate, 8 kB on a path under 1 ms).
    /// On the 1 Mbit/s tbf link that alone did not spare the sound at the start: the first
    /// keyframe still queues in front of it, a window at a time.
    pub fn start(&mut self, now_us: u64, conn: &Connection) {
        if let Some(controller) = self.controller.as_mut() {
            controller.on_transport_stats(now_us, &transport_stats(&conn.stats()));
            self.retarget.send_replace(controller.target().into());
            conn.set_send_window(controller.send_window_bytes());
        }
    }

    /// The peer reported what it got of our video.
    pub fn on_report(&mut self, now_us: u64, report: &ReceiverReport) {
        let Some(controller) = self.controller.as_mut() else { return };
        if let Some(target) = controller.on_report(now_us, report) {
            self.retarget.send_replace(target.into());
        }
        tracing::trace!(?report, estimate_kbps = controller.estimate_kbps(), "the peer's report");
    }

    /// A probe cluster of ours has left.
    pub fn on_probe_sent(&mut self, now_us: u64, sent: ProbeSent, conn: &Connection) {
        let Some(controller) = self.controller.as_mut() else { return };
        let news = controller.on_probe_sent(now_us, sent);
        self.on_probe_news(now_us, news, conn);
    }

    /// The peer measured a probe cluster of ours.
    pub fn on_probe_result(&mut self, now_us: u64, result: ProbeResult, conn: &Connection) {
        let Some(controller) = self.controller.as_mut() else { return };
        let news = controller.on_probe_result(now_us, result);
        self.on_probe_news(now_us, news, conn);
    }

    fn on_probe_news(&mut self, now_us: u64, news: Option<ProbeNews>, conn: &Connection) {
        let (Some(news), Some(controller)) = (news, self.controller.as_ref()) else { return };
        tracing::debug!(
            sent_kbps = news.outcome.sent_kbps.round(),
            received_kbps = news.outcome.received_kbps.round(),
            estimate_kbps = controller.estimate_kbps(),
            "a probe cluster"
        );
        if let Some(target) = news.target {
            self.retarget.send_replace(target.into());
        }
        // Carried whole, the next cluster goes at once.
        self.probe(now_us, conn);
    }

    /// Sends the probe cluster the controller asks for, if any.
    fn probe(&mut self, now_us: u64, conn: &Connection) {
        let Some(cluster) = self.controller.as_mut().and_then(|controller| controller.poll_probe(now_us)) else {
            return;
        };
        let (conn, sent) = (conn.clone(), self.probes_sent.clone());
        tokio::spawn(async move {
            if let Some(record) = send_probe(conn, cluster).await {
                let _ = sent.send(record).await;
            }
        });
    }

    /// Every `REPORT_INTERVAL_US`.
    pub fn on_tick(&mut self, now_us: u64, conn: &Connection) -> Shown {
        let stats = conn.stats();
        let report = {
            let mut meter = self.meter.lock().unwrap_or_else(|e| e.into_inner());
            meter.on_transport_bytes(now_us, stats.udp_rx.bytes);
            meter.report(now_us)
        };
        send_report(conn, report);
        let heard = stats.udp_rx.datagrams != self.datagrams_seen;
        self.datagrams_seen = stats.udp_rx.datagrams;
        let mut shown = Shown::Nothing;
        match self.liveness.check(now_us, heard) {
            Some(LinkChange::WentSilent) => {
                self.stats.reconnecting.store(true, Ordering::Relaxed);
                shown = Shown::Reconnecting;
            }
            Some(LinkChange::CameBack { silent_for_us }) => {
                self.stats.reconnecting.store(false, Ordering::Relaxed);
                tracing::info!("the link is back after {} ms", silent_for_us / 1000);
                self.link_back.send_modify(|returns| *returns += 1);
                // What waited in the dead link is stale: drop it and start afresh.
                if let Some(controller) = self.controller.as_mut() {
                    controller.on_link_back(now_us);
                    self.restart.send_modify(|restarts| *restarts += 1);
                }
            }
            Some(LinkChange::Rebind) => {
                if let Some(endpoint) = &self.rebinds {
                    match crate::net::endpoint::rebind(endpoint) {
                        Ok(local) => tracing::info!("nothing heard for a while: moved to {local}"),
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
            }
            None => {}
        }
        let Some(controller) = self.controller.as_mut() else {
            return shown;
        };
        let transport = transport_stats(&stats);
        if let Some(target) = controller.on_transport_stats(now_us, &transport) {
            self.retarget.send_replace(target.into());
        }
        self.stats.estimate_kbps.store(u64::from(controller.estimate_kbps()), Ordering::Relaxed);
        let redundancy = controller.audio_redundancy(now_us);
        if self.audio_redundancy.send_if_modified(|on| std::mem::replace(on, redundancy) != redundancy) {
            self.stats.audio_redundancy.store(redundancy, Ordering::Relaxed);
            match redundancy {
                true => tracing::info!("the path loses packets: each sound packet now goes twice"),
                false => tracing::info!("no loss for a while: sound packets go once again"),
            }
        }
        conn.set_send_window(controller.send_window_bytes());
        let pacing_kbps = controller.video_pacing_kbps();
        self.video_pacing.send_if_modified(|rate| std::mem::replace(rate, pacing_kbps) != *rate);
        tracing::debug!(
            estimate_kbps = controller.estimate_kbps(),
            window = controller.send_window_bytes(),
            pacing_kbps,
            cwnd = stats.path.cwnd,
            rtt_ms = transport.rtt_ms,
            lost = stats.path.lost_packets,
            congestion_events = stats.path.congestion_events,
            report_kbps = report.receive_kbps,
            report_queue_ms = report.queuing_delay_ms,
            "adaptation tick"
        );
        self.probe(now_us, conn);
        shown
    }
}

/// What the estimator takes of quinn's statistics. The round trip is rounded up to whole
/// milliseconds: a path under one (loopback, a LAN) is not an unmeasured one.
fn transport_stats(stats: &ConnectionStats) -> TransportStats {
    TransportStats {
        rtt_ms: u32::try_from(stats.path.rtt.as_micros().div_ceil(1000)).unwrap_or(u32::MAX),
        cwnd_bytes: stats.path.cwnd,
        lost_packets: stats.path.lost_packets,
        sent_packets: stats.path.sent_packets,
        sent_bytes: stats.udp_tx.bytes,
    }
}
