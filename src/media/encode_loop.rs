//! The encoder thread: takes the newest captured picture, encodes it, and hands the
//! packet to the network without ever waiting for it. If the network's queue is full the
//! packet is dropped and the next picture is made a keyframe, starting a fresh group.
//! While the user has turned the camera off nothing is sent; turning it back on starts
//! with a keyframe, so the peer's picture returns at once.
//!
//! What to send (bitrate, largest size, frame rate) comes as a `Target` through a
//! `tokio::sync::watch` channel: the newest value wins, the sender (async or not) never
//! waits, and each picture reads the current one. The thread publishes the operating point
//! it applied in the call's stats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::{Sender, error::TrySendError};
use tokio::sync::watch;

use super::adaptive_encoder::{AdaptiveEncoder, Target};
use super::codec::{CodecError, EncodedFrame, EncoderSettings};
use super::frame::SharedFrame;
use crate::latest::Latest;
use crate::stats::CallStats;
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
    pub keyframe_wanted: Arc<AtomicBool>,
    pub stats: Arc<CallStats>,
    pub stop: Arc<AtomicBool>,
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

    fn run(self, mut encoder: AdaptiveEncoder) {
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
                encoder.request_keyframe();
            }
            if self.keyframe_wanted.swap(false, Ordering::Relaxed) {
                encoder.request_keyframe();
            }
            // The network has not taken the pictures already made: skip this one before it is
            // encoded, so the reference chain stays whole and nothing queues behind it.
            if self.output.capacity() == 0 {
                self.stats.frames_skipped_sending.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let target = *self.targets.borrow();
            let encoded = encoder.encode(&frame, target);
            if let Some(applied) = encoder.applied() {
                self.stats.record_sending(applied.width, applied.height, applied.fps, applied.video_kbps);
            }
            let packet = match encoded {
                Ok(Some(packet)) => packet,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("{e}");
                    encoder.request_keyframe();
                    continue;
                }
            };
            match self.output.try_send(packet) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
                    encoder.request_keyframe();
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
    }
}
