//! Sending video: each group of pictures (an IDR picture and the P pictures after it) on
//! its own unidirectional QUIC stream, newer groups at higher priority. When a new group
//! starts, the old stream is finished if it is up to date, or reset if it is still
//! behind, so stale pictures never hold up fresh ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use quinn::{Connection, SendStream, VarInt};
use tokio::sync::{mpsc, watch};

use super::wire::{FrameHeader, video_stream_preamble};
use crate::media::codec::EncodedFrame;
use crate::stats::CallStats;

/// Reset code for a group given up because a newer one started.
const STALE_GROUP: VarInt = VarInt::from_u32(1);
/// Pictures a group's writer may have queued before the group counts as behind.
const GROUP_QUEUE: usize = 8;

/// One group's writer task, seen from the dispatcher.
struct Group {
    frames: mpsc::Sender<Vec<u8>>,
    superseded: watch::Sender<bool>,
    /// Set when a picture had to be dropped: the rest of the group is undecodable.
    broken: bool,
}

/// Sends encoded pictures until the encoder stops or the connection ends.
pub async fn send_video(
    conn: Connection,
    mut packets: mpsc::Receiver<EncodedFrame>,
    keyframe_wanted: Arc<AtomicBool>,
    stats: Arc<CallStats>,
) {
    let mut seq = 0u64;
    let mut next_group = 0u64;
    let mut current: Option<Group> = None;
    while let Some(packet) = packets.recv().await {
        if packet.keyframe {
            if let Some(old) = current.take() {
                let _ = old.superseded.send(true);
            }
            current = Some(start_group(&conn, next_group));
            next_group += 1;
        }
        let header = FrameHeader {
            seq,
            capture_us: packet.capture_us,
            keyframe: packet.keyframe,
            len: packet.data.len() as u32,
        };
        seq += 1;
        let Some(group) = current.as_mut().filter(|g| !g.broken) else {
            // No group to put a P picture in: it cannot be decoded; ask for a keyframe.
            keyframe_wanted.store(true, Ordering::Relaxed);
            stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let mut bytes = Vec::with_capacity(header.encode().len() + packet.data.len());
        bytes.extend_from_slice(&header.encode());
        bytes.extend_from_slice(&packet.data);
        let size = bytes.len();
        if group.frames.try_send(bytes).is_ok() {
            stats.record_sent(size);
        } else {
            // The network is behind: give up on this group and start a new one.
            group.broken = true;
            keyframe_wanted.store(true, Ordering::Relaxed);
            stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Some(group) = current {
        let _ = group.superseded.send(true);
    }
}

fn start_group(conn: &Connection, group: u64) -> Group {
    let (frames_tx, frames_rx) = mpsc::channel(GROUP_QUEUE);
    let (superseded_tx, superseded_rx) = watch::channel(false);
    let conn = conn.clone();
    tokio::spawn(async move {
        if let Err(e) = write_group(conn, group, frames_rx, superseded_rx).await {
            tracing::debug!(group, "video stream ended: {e}");
        }
    });
    Group { frames: frames_tx, superseded: superseded_tx, broken: false }
}

async fn write_group(
    conn: Connection,
    group: u64,
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut superseded: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut stream: SendStream = conn.open_uni().await?;
    // Newer groups first; the priority wraps harmlessly after 2^31 groups.
    stream.set_priority((group % i32::MAX as u64) as i32)?;
    stream.write_all(&video_stream_preamble(group)).await?;
    loop {
        let next = tokio::select! {
            biased;
            _ = superseded.wait_for(|s| *s) => {
                // A newer group started: finish if nothing is pending, else give up.
                match frames.try_recv() {
                    Ok(_) => { let _ = stream.reset(STALE_GROUP); }
                    Err(_) => { let _ = stream.finish(); }
                }
                return Ok(());
            }
            next = frames.recv() => next,
        };
        let Some(bytes) = next else {
            let _ = stream.finish();
            return Ok(());
        };
        tokio::select! {
            written = stream.write_all(&bytes) => written?,
            _ = superseded.wait_for(|s| *s) => {
                let _ = stream.reset(STALE_GROUP);
                return Ok(());
            }
        }
    }
}
