//! The encoder thread: takes the newest captured picture, encodes it, and hands the
//! packet to the network without ever waiting for it. If the network's queue is full the
//! packet is dropped and the next picture is made a keyframe, starting a fresh group.
//! While the user has turned the camera off nothing is sent; turning it back on starts
//! with a keyframe, so the peer's picture returns at once. Whether a picture must be a
//! keyframe is `adapt::keyframes`' decision: this thread tells it its own reasons, and
//! asks it before each picture.
//!
//! What to send (bitrate, largest size, frame rate) comes as a `Target` through a
//! `tokio::sync::watch` channel: the newest value wins, the sender (async or not) never
//! waits, and each picture reads the current one. When adapting, the thread also tells a
//! `CpuLoad` how long each picture took from capture to encoded, and holds the target to
//! the ladder's rung the machine keeps up with. It publishes the operating point it
//! applied, and what limited it, in the call's stats.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::{Sender, error::TrySendError};
use tokio::sync::watch;

use super::adaptive_encoder::{AdaptiveEncoder, Target};
use super::codec::{CodecError, EncodedFrame, EncoderSettings};
use super::frame::{SharedFrame, VideoFrame};
use crate::adapt::cpu_load::CpuLoad;
use crate::adapt::keyframes::{Keyframes, Reason};
use crate::latest::Latest;
use crate::net::clock::now_us;
use crate::stats::{CallStats, Limit};
use crate::view::MediaState;

/// Everything the encoder thread needs.
pub struct EncodeLoop {
    /// What the encoder starts with, and its keyframe interval.
    pub settings: EncoderSettings,
    /// What to send from each picture on; the newest value wins.
    pub targets: watch::Receiver<Target>,
    pub input: Arc<Latest<SharedFrame>>,
    pub media: watch::Receiver<MediaState>,
    pub output: Sender<EncodedFrame>,
    /// Why the next picture must be a keyframe, from every side of the call.
    pub keyframes: Arc<Mutex<Keyframes>>,
    pub stats: Arc<CallStats>,
    pub stop: Arc<AtomicBool>,
    /// CPU overuse handling; `None` with `--no-adapt`.
    pub cpu: Option<CpuLoad>,
}

impl EncodeLoop {
    /// Starts the encoder thread. It ends when `stop` is set or the network side goes away.
    pub fn spawn(self) -> Result<JoinHandle<()>, CodecError> {
        let encoder = AdaptiveEncoder::new(self.settings)?;
        // A picture captured before the call would start it with a stale timestamp.
        self.input.try_take();
        Ok(std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || self.run(encoder))
            .expect("spawning the encoder thread"))
    }

    /// `link` held to what this machine can do: under the CPU's limit after overuse, and no
    /// bigger than what `applied` sends now unless the CPU affords the bigger rung.
    fn within_cpu(&self, link: Target, frame: &VideoFrame, applied: Option<Target>) -> Target {
        let Some(cpu) = &self.cpu else { return link };
        let target = cpu.allowed().map_or(link, |rung| link.within(rung));
        let Some(sent) = applied.map(|applied| applied.rung()) else { return target };
        let (width, height) = target.fit(frame.width, frame.height);
        if cpu.affords(sent, Target { width, height, ..target }.rung()) { target } else { target.within(sent) }
    }

    fn run(mut self, mut encoder: AdaptiveEncoder) {
        let mut camera_was_off = false;
        while !self.stop.load(Ordering::Relaxed) {
            // While switched off the capture sends nothing; remember it either way.
            camera_was_off |= self.media.borrow().camera_off;
            let Some(frame) = self.input.take_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if self.media.borrow().camera_off {
                continue;
            }
            if std::mem::take(&mut camera_was_off) {
                self.want_keyframe(Reason::CameraOn);
            }
            if let Some(reason) = self.keyframes().take(now_us()) {
                tracing::debug!("a keyframe: {}", reason.describe());
                encoder.request_keyframe();
            }
            // The network has not taken the pictures already made: skip this one before it is
            // encoded, so the reference chain stays whole and nothing queues behind it.
            if self.output.capacity() == 0 {
                self.stats.frames_skipped_sending.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let link = *self.targets.borrow();
            let target = self.within_cpu(link, &frame, encoder.applied());
            let encoded = encoder.encode(&frame, target);
            self.stats.frames_skipped_by_encoder.store(encoder.rate_control_skips(), Ordering::Relaxed);
            if let Some(applied) = encoder.applied() {
                let limit = match () {
                    _ if target != link => Some(Limit::Cpu),
                    _ if link.video_kbps < self.settings.bitrate_kbps => Some(Limit::Link),
                    _ => None,
                };
                self.stats.record_sending(applied.width, applied.height, applied.fps, applied.video_kbps, limit);
            }
            if let (Some(cpu), Ok(Some(_)), Some(applied)) = (self.cpu.as_mut(), &encoded, encoder.applied()) {
                if let Some(steps) = cpu.on_encoded(frame.capture_us, now_us(), applied.rung()) {
                    match cpu.allowed() {
                        Some(rung) => tracing::info!(
                            "this machine cannot keep up: sending at most {}x{}@{} ({steps} steps down)",
                            rung.width,
                            rung.height,
                            rung.fps
                        ),
                        None => tracing::info!("this machine keeps up again: no limit from the CPU"),
                    }
                }
                self.stats
                    .cpu_usage_pct
                    .store(cpu.usage().map_or(0, |u| (u * 100.0).round() as u64), Ordering::Relaxed);
            }
            let packet = match encoded {
                Ok(Some(packet)) => packet,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("{e}");
                    self.want_keyframe(Reason::PictureLost);
                    continue;
                }
            };
            if packet.keyframe {
                self.keyframes().on_keyframe(now_us());
            }
            match self.output.try_send(packet) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
                    self.want_keyframe(Reason::PictureLost);
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
    }

    fn keyframes(&self) -> std::sync::MutexGuard<'_, Keyframes> {
        self.keyframes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn want_keyframe(&self, reason: Reason) {
        self.keyframes().request(now_us(), reason);
    }
}
