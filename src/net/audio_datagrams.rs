//! Audio on the wire: one QUIC datagram per 10 ms Opus packet. Datagrams are never
//! retransmitted (a late packet is useless; Opus conceals a lost one) and quinn sends them
//! ahead of stream data, so a big video picture never delays the sound.

use std::sync::Arc;

use quinn::{Connection, SendDatagramError};
use tokio::sync::mpsc;

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

/// Passes each audio datagram to the playout thread. A malformed datagram ends the call:
/// the peer is not speaking this protocol.
pub async fn receive_audio(
    conn: Connection,
    output: std::sync::mpsc::SyncSender<ReceivedAudio>,
    stats: Arc<CallStats>,
) -> Result<(), WireError> {
    while let Ok(bytes) = conn.read_datagram().await {
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
