//! Sending video: each group of pictures (an IDR picture and the P pictures after it) on
//! its own unidirectional QUIC stream, newer groups at higher priority.
//!
//! One task writes the pictures in order and waits while quinn's send window is full.
//! While the link holds the call down, it hands each picture to quinn a packet at a time
//! at the pacing rate it is given (`adapt::video_pacer`), so the sound goes between.
//! It takes the next picture only when the last one is written, so when the network is
//! behind, the encoder finds its output still full and skips pictures before encoding
//! them: nothing queues beyond the send window (which the call bounds to what the path
//! carries in a short while), and no encoded picture is ever thrown away, which would
//! cost a keyframe. A restart (the call asks for one when the link comes back after an
//! outage) resets the current stream, so quinn stops sending what went stale in it; the
//! next keyframe opens a new stream, and the first P picture that finds no group asks the
//! encoder for one.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, SendStream, VarInt};
use tokio::sync::{mpsc, watch};

use super::clock::now_us;
use super::wire::{FrameHeader, video_stream_preamble};
use crate::adapt::keyframes::{Keyframes, Reason};
use crate::adapt::video_groups::{Placement, VideoGroups};
use crate::adapt::video_pacer::{CHUNK_BYTES, VideoPacer};
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
/// `restart` gives up the current group; `pacing` is the rate to pace pictures at, if any.
/// What `VideoGroups` decides is carried out here; a keyframe it needs is asked of the
/// encoder through `keyframes`.
pub async fn send_video(
    conn: Connection,
    mut packets: mpsc::Receiver<EncodedFrame>,
    mut restart: watch::Receiver<u64>,
    pacing: watch::Receiver<Option<u32>>,
    keyframes: Arc<Mutex<Keyframes>>,
    stats: Arc<CallStats>,
) {
    let mut sender = GroupSender {
        conn,
        stream: None,
        groups: VideoGroups::default(),
        keyframes,
        pacer: VideoPacer::default(),
        pacing,
    };
    loop {
        let packet = tokio::select! {
            biased;
            Ok(()) = restart.changed() => {
                sender.give_up();
                continue;
            }
            packet = packets.recv() => match packet {
                Some(packet) => packet,
                None => break,
            },
        };
        // Pacing is not stalling: the picture's time at the pacing rate is added.
        sender.pacer.set_rate(*sender.pacing.borrow());
        let pacing_us = sender.pacer.duration_us(packet.data.len());
        let stall_limit = sender
            .groups
            .stall_limit_us(packet.keyframe, now_us())
            .map(|us| Duration::from_micros(us.saturating_add(pacing_us)));
        let size = tokio::select! {
            biased;
            Ok(()) = restart.changed() => {
                sender.give_up();
                continue;
            }
            _ = sleep_or_never(stall_limit) => {
                tracing::debug!("a picture waited {stall_limit:?} for the send window: starting afresh");
                stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
                sender.stalled();
                continue;
            }
            sent = sender.send(&packet) => match sent {
                Ok(Some(size)) => size,
                Ok(None) => {
                    stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
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

/// The stream of the group being sent, what decides about groups, and the pacer.
struct GroupSender {
    conn: Connection,
    stream: Option<SendStream>,
    groups: VideoGroups,
    keyframes: Arc<Mutex<Keyframes>>,
    pacer: VideoPacer,
    pacing: watch::Receiver<Option<u32>>,
}

impl GroupSender {
    /// Writes one picture where `VideoGroups` places it; returns the bytes written, or
    /// `None` for a P picture that has no group (not sent: a keyframe is asked for).
    async fn send(&mut self, packet: &EncodedFrame) -> Result<Option<usize>, SendError> {
        let seq = match self.groups.place(packet.keyframe) {
            Placement::NewGroup { group, seq } => {
                if let Some(mut old) = self.stream.take() {
                    // What it still holds goes out after the new group (lower priority), and the
                    // receiver stops it as soon as the new group arrives.
                    let _ = old.finish();
                }
                let mut stream = self.conn.open_uni().await?;
                // Newer groups first; the priority wraps harmlessly after 2^31 groups.
                stream.set_priority((group % i32::MAX as u64) as i32)?;
                stream.write_all(&video_stream_preamble(group)).await?;
                self.stream = Some(stream);
                seq
            }
            Placement::Current { seq } => seq,
            Placement::NoGroup => {
                self.want_keyframe();
                return Ok(None);
            }
        };
        // A keyframe whose stream was being opened when a restart cancelled it leaves its group
        // without one; every cancelling path gives the group up, but never trust that here.
        let Some(stream) = self.stream.as_mut() else {
            self.groups.give_up();
            self.want_keyframe();
            return Ok(None);
        };
        let header = FrameHeader {
            seq,
            capture_us: packet.capture_us,
            sent_us: now_us(),
            keyframe: packet.keyframe,
            len: packet.data.len() as u32,
        }
        .encode();
        stream.write_all(&header).await?;
        self.pacer.on_sent(now_us(), header.len());
        for chunk in packet.data.chunks(CHUNK_BYTES) {
            self.pacer.set_rate(*self.pacing.borrow());
            let wait_us = self.pacer.wait_us(now_us());
            if wait_us > 0 {
                tokio::time::sleep(Duration::from_micros(wait_us)).await;
            }
            stream.write_all(chunk).await?;
            self.pacer.on_sent(now_us(), chunk.len());
        }
        tracing::trace!(seq, keyframe = packet.keyframe, bytes = packet.data.len(), "picture handed to quinn");
        Ok(Some(header.len() + packet.data.len()))
    }

    /// The link came back: what the current group still holds is stale. The keyframe that
    /// starts the next group is asked for by the next P picture, which finds no group: the
    /// next picture may already be a keyframe (a new size starts with one), and asking now
    /// would make a second one right behind it (at a drop: 17 kB more, a third of a second
    /// of a 0.5 Mbit/s link).
    fn give_up(&mut self) {
        if self.groups.give_up() {
            self.reset_stream();
        }
    }

    /// A picture waited its whole stall limit for the send window: as `give_up`.
    fn stalled(&mut self) {
        if self.groups.on_stalled(now_us()) {
            self.reset_stream();
        }
    }

    /// quinn drops what it has not delivered of the current group.
    fn reset_stream(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = stream.reset(STALE_GROUP);
        }
    }

    fn want_keyframe(&self) {
        self.keyframes.lock().unwrap_or_else(|e| e.into_inner()).request(now_us(), Reason::NewGroup);
    }
}
