//! Datagrams both ways: one per 10 ms Opus packet (with a copy of the packet before it
//! while the adaptation asks for redundancy), the receiver's report every 100 ms, and now
//! and then a probe cluster of padding, whose measure the receiver sends back at once.
//! Datagrams are never retransmitted (a late packet is useless, Opus conceals a lost one;
//! a lost report is replaced by the next) and quinn sends them ahead of stream data, so a
//! big video picture never delays the sound, and nothing waits behind a lost report. A peer
//! that sends datagrams far faster than a call needs has them dropped unread, and is hung
//! up on if it keeps on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{Connection, SendDatagramError};
use tokio::sync::{mpsc, watch};

use super::clock::now_us;
use super::flood_guard::{FloodGuard, FloodLimit, Verdict};
use super::wire::{AudioDatagram, Datagram, ProbeDatagram, WireError};
use crate::adapt::probe::{ProbeCluster, ProbeResult, ProbeSent};
use crate::adapt::probe_meter::ProbeMeter;
use crate::adapt::report::ReceiverReport;
use crate::media::audio::playout::ReceivedAudio;
use crate::media::audio::sender::AudioPacket;
use crate::stats::CallStats;

/// Sends each packet the audio sender makes, until the connection or the sender ends; while
/// `redundancy` says so, each datagram also carries the packet before it, if that one was
/// the previous number and both fit in one datagram.
pub async fn send_audio(
    conn: Connection,
    mut packets: mpsc::Receiver<AudioPacket>,
    redundancy: watch::Receiver<bool>,
    stats: Arc<CallStats>,
) {
    let mut warned = false;
    let mut previous: Option<AudioPacket> = None;
    while let Some(packet) = packets.recv().await {
        let mut datagram =
            AudioDatagram { seq: packet.seq, capture_us: packet.capture_us, payload: &packet.payload, previous: None };
        datagram.previous = previous
            .as_ref()
            .filter(|previous| *redundancy.borrow() && previous.seq.checked_add(1) == Some(packet.seq))
            .map(|previous| previous.payload.as_slice());
        if conn.max_datagram_size().is_none_or(|room| datagram.encoded_len() > room) {
            datagram.previous = None;
        }
        let datagram = datagram.encode();
        previous = Some(packet);
        let bytes = datagram.len();
        match conn.send_datagram(datagram.into()) {
            Ok(()) => stats.record_audio_sent(bytes),
            Err(SendDatagramError::ConnectionLost(_)) => return,
            Err(e) if !warned => {
                eprintln!("chat: cannot send sound to the peer: {e}");
                warned = true;
            }
            Err(_) => {}
        }
    }
}

/// Our report on the peer's video, sent at once: a datagram lost or refused is replaced by the
/// next report.
pub fn send_report(conn: &Connection, report: ReceiverReport) {
    let datagram = Datagram::Report(report).encode();
    if let Err(e) = conn.send_datagram(datagram.into()) {
        tracing::debug!("a report was not sent: {e}");
    }
}

/// Sends a probe cluster's padding, a datagram every `spacing_us`; returns what the
/// transport had sent at its first and last datagram, or `None` if the connection is gone.
pub async fn send_probe(conn: Connection, cluster: ProbeCluster) -> Option<ProbeSent> {
    let padding = vec![0; cluster.padding_bytes];
    let (mut first, mut last) = ((0, 0), (0, 0));
    for index in 0..cluster.datagrams {
        if index > 0 {
            tokio::time::sleep(Duration::from_micros(cluster.spacing_us)).await;
        }
        let datagram = ProbeDatagram { cluster: cluster.id, index, count: cluster.datagrams, padding: &padding };
        match conn.send_datagram(datagram.encode().into()) {
            Err(SendDatagramError::ConnectionLost(_)) => return None,
            Err(e) => tracing::debug!("a probe datagram was not sent: {e}"),
            Ok(()) => {}
        }
        let sent = (now_us(), conn.stats().udp_tx.bytes);
        if index == 0 {
            first = sent;
        }
        last = sent;
    }
    Some(ProbeSent { id: cluster.id, first, last })
}

/// What the peer tells our rate adaptation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    Report(ReceiverReport),
    ProbeResult(ProbeResult),
}

/// A call sends 110 datagrams a second (sound every 10 ms, a report every 100 ms), and while
/// it probes up to about 65 more (a cluster of 6 every round trip and 50 ms). About twice
/// that on average, and a second's worth of sound at once, leave room for any honest burst
/// (the send buffer holds less than that).
const FLOOD_LIMIT: FloodLimit =
    FloodLimit { per_second: 350.0, burst: 100.0, disconnect_after: Duration::from_secs(3) };

/// Why the peer's datagrams were refused.
#[derive(Debug, thiserror::Error)]
pub enum DatagramsInError {
    /// A datagram that is not this protocol's.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Datagrams far above the rate sound needs, for seconds on end.
    #[error(
        "the peer flooded us with datagrams (more than {} a second for {} s; {dropped} dropped unread)",
        FLOOD_LIMIT.per_second,
        FLOOD_LIMIT.disconnect_after.as_secs()
    )]
    Flood {
        /// How many were dropped before hanging up.
        dropped: u64,
    },
}

/// Passes each audio datagram to the playout thread, and each report and probe result to
/// `feedback`; measures the peer's probe clusters and answers each at once. A malformed
/// datagram ends the call (the peer is not speaking this protocol), and so does a flood.
pub async fn receive_datagrams(
    conn: Connection,
    output: std::sync::mpsc::SyncSender<ReceivedAudio>,
    feedback: mpsc::Sender<Feedback>,
    stats: Arc<CallStats>,
) -> Result<(), DatagramsInError> {
    let mut guard = FloodGuard::new(FLOOD_LIMIT);
    let mut probes = ProbeMeter::default();
    while let Ok(bytes) = conn.read_datagram().await {
        match guard.admit(Instant::now()) {
            Verdict::Pass => {}
            Verdict::Drop => continue,
            Verdict::Disconnect => return Err(DatagramsInError::Flood { dropped: guard.dropped() }),
        }
        let audio = match Datagram::decode(&bytes)? {
            Datagram::Audio(audio) => audio,
            Datagram::Report(report) => {
                // The call reads them at once; one it has not read yet is stale anyway.
                let _ = feedback.try_send(Feedback::Report(report));
                continue;
            }
            Datagram::ProbeResult(result) => {
                let _ = feedback.try_send(Feedback::ProbeResult(result));
                continue;
            }
            Datagram::Probe(probe) => {
                let received = conn.stats().udp_rx.bytes;
                if let Some(result) = probes.on_probe(now_us(), probe.cluster, probe.index, probe.count, received)
                    && let Err(e) = conn.send_datagram(Datagram::ProbeResult(result).encode().into())
                {
                    tracing::debug!("a probe result was not sent: {e}");
                }
                continue;
            }
        };
        stats.record_audio_received(bytes.len());
        let packet = ReceivedAudio {
            seq: audio.seq,
            capture_us: audio.capture_us,
            payload: audio.payload.to_vec(),
            previous: audio.previous.map(<[u8]>::to_vec),
        };
        // Full: the playout thread is behind, and the packet would be late anyway. Gone:
        // the sound cannot play, and reports still come.
        let _ = output.try_send(packet);
    }
    Ok(())
}
