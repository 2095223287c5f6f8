//! Sending video: each group of pictures (an IDR picture and the P pictures after it) on
//! its own unidirectional QUIC stream, newer groups at higher priority.
//!
//! One task writes the pictures in order and waits while quinn's send window is full.
//! It takes the next picture only when the last one is written, so when the network is
//! behind, the encoder finds its output still full and skips pictures before encoding
//! them: nothing queues beyond the send window (which the call bounds to what the path
//! carries in a short while), and no encoded picture is ever thrown away, which would
//! cost a keyframe. A restart (the call asks for one when the link comes back after an
//! outage) resets the current stream, so quinn stops sending what went stale in it, and
//! the next picture the encoder makes is a keyframe on a new stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quinn::{Connection, SendStream, VarInt};
use tokio::sync::{mpsc, watch};

use super::wire::{FrameHeader, video_stream_preamble};
use crate::adapt::pacing;
use crate::media::codec::EncodedFrame;
use crate::stats::CallStats;

/// Reset code for a group given up because a newer one started or it went stale.
const STALE_GROUP: VarInt = VarInt::from_u32(1);

/// Why sending stopped.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("opening a video stream: {0}")]
    Open(#[from] quinn::ConnectionError),
    #[error("writing video: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("setting a video stream's priority: {0}")]
    Priority(#[from] quinn::ClosedStream),
}

/// Sends encoded pictures until the encoder stops or the connection ends. Each change of
/// `restart` gives up the current group.
pub async fn send_video(
    conn: Connection,
    mut packets: mpsc::Receiver<EncodedFrame>,
    mut restart: watch::Receiver<u64>,
    keyframe_wanted: Arc<AtomicBool>,
    stats: Arc<CallStats>,
) {
    let mut sender = GroupSender { conn, stream: None, next_group: 0, seq: 0 };
    let mut last_stall: Option<Instant> = None;
    loop {
        let packet = tokio::select! {
            biased;
            Ok(()) = restart.changed() => {
                sender.give_up(&keyframe_wanted);
                continue;
            }
            packet = packets.recv() => match packet {
                Some(packet) => packet,
                None => break,
            },
        };
        let since_last_stall = last_stall.map(|at| at.elapsed().as_micros().min(u128::from(u64::MAX)) as u64);
        let stall_limit = pacing::stall_limit_us(packet.keyframe, since_last_stall).map(Duration::from_micros);
        let size = tokio::select! {
            biased;
            Ok(()) = restart.changed() => {
                sender.give_up(&keyframe_wanted);
                continue;
            }
            _ = sleep_or_never(stall_limit) => {
                tracing::debug!("a picture waited {stall_limit:?} for the send window: starting afresh");
                last_stall = Some(Instant::now());
                stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
                sender.give_up(&keyframe_wanted);
                continue;
            }
            sent = sender.send(&packet) => match sent {
                Ok(Some(size)) => size,
                Ok(None) => {
                    // A P picture with no group to belong to: it cannot be decoded.
                    stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
                    keyframe_wanted.store(true, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    tracing::debug!("video sending ended: {e}");
                    return;
                }
            },
        };
        stats.record_sent(size);
    }
    if let Some(mut stream) = sender.stream.take() {
        let _ = stream.finish();
    }
}

/// Sleeps for `limit`, or forever.
async fn sleep_or_never(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// The stream of the group being sent, and the numbering of groups and pictures.
struct GroupSender {
    conn: Connection,
    stream: Option<SendStream>,
    next_group: u64,
    seq: u64,
}

impl GroupSender {
    /// Writes one picture, on a new stream if it is a keyframe; returns the bytes written,
    /// or `None` for a P picture that has no group.
    async fn send(&mut self, packet: &EncodedFrame) -> Result<Option<usize>, SendError> {
        if packet.keyframe {
            if let Some(mut old) = self.stream.take() {
                // What it still holds goes out after the new group (lower priority), and the
                // receiver stops it as soon as the new group arrives.
                let _ = old.finish();
            }
            let mut stream = self.conn.open_uni().await?;
            // Newer groups first; the priority wraps harmlessly after 2^31 groups.
            stream.set_priority((self.next_group % i32::MAX as u64) as i32)?;
            stream.write_all(&video_stream_preamble(self.next_group)).await?;
            self.next_group += 1;
            self.stream = Some(stream);
        }
        let header = FrameHeader {
            seq: self.seq,
            capture_us: packet.capture_us,
            keyframe: packet.keyframe,
            len: packet.data.len() as u32,
        };
        self.seq += 1;
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let header = header.encode();
        stream.write_all(&header).await?;
        stream.write_all(&packet.data).await?;
        Ok(Some(header.len() + packet.data.len()))
    }

    /// Resets the current group: quinn drops what it has not delivered of it. The next
    /// picture must be a keyframe.
    fn give_up(&mut self, keyframe_wanted: &AtomicBool) {
        if let Some(mut stream) = self.stream.take() {
            let _ = stream.reset(STALE_GROUP);
        }
        keyframe_wanted.store(true, Ordering::Relaxed);
    }
}
