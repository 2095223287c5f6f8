//! The encoder thread: takes the newest captured picture, encodes it, and hands the
//! packet to the network without ever waiting for it. If the network's queue is full the
//! packet is dropped and the next picture is made a keyframe, starting a fresh group.
//! While the user has turned the camera off nothing is sent; turning it back on starts
//! with a keyframe, so the peer's picture returns at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::{Sender, error::TrySendError};
use tokio::sync::watch;

use super::codec::{CodecError, EncodedFrame, EncoderSettings, VideoEncoder};
use super::frame::SharedFrame;
use crate::latest::Latest;
use crate::stats::CallStats;
use crate::view::MediaState;

/// Starts the encoder thread. It ends when `stop` is set or the network side goes away.
pub fn spawn_encoder(
    settings: EncoderSettings,
    input: Arc<Latest<SharedFrame>>,
    media: watch::Receiver<MediaState>,
    output: Sender<EncodedFrame>,
    keyframe_wanted: Arc<AtomicBool>,
    stats: Arc<CallStats>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, CodecError> {
    let mut encoder = VideoEncoder::new(settings)?;
    // A picture captured before the call would start it with a stale timestamp.
    input.try_take();
    Ok(std::thread::Builder::new()
        .name("encoder".into())
        .spawn(move || {
            let mut camera_was_off = false;
            while !stop.load(Ordering::Relaxed) {
                // While switched off the capture sends nothing; remember it either way.
                camera_was_off |= media.borrow().camera_off;
                let Some(frame) = input.take_timeout(Duration::from_millis(100)) else {
                    continue;
                };
                if media.borrow().camera_off {
                    continue;
                }
                if std::mem::take(&mut camera_was_off) {
                    encoder.request_keyframe();
                }
                if keyframe_wanted.swap(false, Ordering::Relaxed) {
                    encoder.request_keyframe();
                }
                let packet = match encoder.encode(&frame) {
                    Ok(Some(packet)) => packet,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!("{e}");
                        encoder.request_keyframe();
                        continue;
                    }
                };
                match output.try_send(packet) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        stats.frames_dropped_sending.fetch_add(1, Ordering::Relaxed);
                        encoder.request_keyframe();
                    }
                    Err(TrySendError::Closed(_)) => return,
                }
            }
        })
        .expect("spawning the encoder thread"))
}
