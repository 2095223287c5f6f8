//! Audio on the wire: one QUIC datagram per 10 ms Opus packet. Datagrams are never
//! retransmitted (a late packet is useless; Opus conceals a lost one) and quinn sends them
//! ahead of stream data, so a big video picture never delays the sound. A peer that sends
//! datagrams far faster than sound needs has them dropped unread, and is hung up on if it
//! keeps on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{Connection, SendDatagramError};
use tokio::sync::mpsc;

use super::flood_guard::{FloodGuard, FloodLimit, Verdict};
use super::wire::{AudioDatagram, WireError};
use crate::media::audio::playout::ReceivedAudio;
use crate::media::audio::sender::AudioPacket;
use crate::stats::CallStats;

/// Sends each packet the audio sender makes, until the connection or the sender ends.
pub async fn send_audio(conn: Connection, mut packets: mpsc::Receiver<AudioPacket>, stats: Arc<CallStats>) {
    let mut warned = false;
    while let Some(packet) = packets.recv().await {
        let datagram =
            AudioDatagram { seq: packet.seq, capture_us: packet.capture_us, payload: &packet.payload }.encode();
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

/// A call sends 100 datagrams a second (10 ms each). Twice that on average, and a second's
/// worth at once, leave room for any honest burst (the send buffer holds less than that).
const AUDIO_FLOOD_LIMIT: FloodLimit =
    FloodLimit { per_second: 200.0, burst: 100.0, disconnect_after: Duration::from_secs(3) };

/// Why the peer's sound was refused.
#[derive(Debug, thiserror::Error)]
pub enum AudioInError {
    /// A datagram that is not this protocol's.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Datagrams far above the rate sound needs, for seconds on end.
    #[error(
        "the peer flooded us with sound datagrams (more than {} a second for {} s; {dropped} dropped unread)",
        AUDIO_FLOOD_LIMIT.per_second,
        AUDIO_FLOOD_LIMIT.disconnect_after.as_secs()
    )]
    Flood {
        /// How many were dropped before hanging up.
        dropped: u64,
    },
}

/// Passes each audio datagram to the playout thread. A malformed datagram ends the call
/// (the peer is not speaking this protocol), and so does a flood.
pub async fn receive_audio(
    conn: Connection,
    output: std::sync::mpsc::SyncSender<ReceivedAudio>,
    stats: Arc<CallStats>,
) -> Result<(), AudioInError> {
    let mut guard = FloodGuard::new(AUDIO_FLOOD_LIMIT);
    while let Ok(bytes) = conn.read_datagram().await {
        match guard.admit(Instant::now()) {
            Verdict::Pass => {}
            Verdict::Drop => continue,
            Verdict::Disconnect => return Err(AudioInError::Flood { dropped: guard.dropped() }),
        }
        let datagram = AudioDatagram::decode(&bytes)?;
        stats.record_audio_received(bytes.len());
        let packet =
            ReceivedAudio { seq: datagram.seq, capture_us: datagram.capture_us, payload: datagram.payload.to_vec() };
        match output.try_send(packet) {
            Ok(()) | Err(std::sync::mpsc::TrySendError::Full(_)) => {}
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => break,
        }
    }
    Ok(())
}
