//! The audio sender thread: takes 10 ms frames from the source, silences them while the
//! user has muted the microphone (the packets keep flowing, so the far end's timing and
//! lip sync carry on), encodes them with Opus and hands them to the network without
//! waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;

use tokio::sync::mpsc::{Sender, error::TrySendError};
use tokio::sync::watch;

use super::microphone::{MicPlan, Microphone};
use super::opus_codec::AudioEncoder;
use crate::stats::CallStats;
use crate::view::MediaState;

/// One encoded frame on its way out.
#[derive(Debug)]
pub struct AudioPacket {
    pub seq: u64,
    /// Capture time of its first sample, µs on this peer's wall clock.
    pub capture_us: u64,
    pub payload: Vec<u8>,
}

/// Starts the sender thread; it ends when `stop` is set or the network side goes away.
pub fn spawn_audio_sender(
    plan: MicPlan,
    media: watch::Receiver<MediaState>,
    output: Sender<AudioPacket>,
    stats: Arc<CallStats>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("audio-sender".into())
        .spawn(move || {
            let mut encoder = match AudioEncoder::new() {
                Ok(encoder) => encoder,
                Err(e) => return eprintln!("chat: {e}; the peer will hear nothing"),
            };
            let mut source = match Microphone::open(&plan) {
                Ok(source) => source,
                Err(e) => return eprintln!("chat: {e}; the peer will hear nothing"),
            };
            let mut seq = 0u64;
            while let Some((mut frame, capture_us)) = source.next_frame(&stop) {
                if media.borrow().muted {
                    frame.fill(0.0);
                }
                let payload = match encoder.encode(&frame) {
                    Ok(payload) => payload.to_vec(),
                    Err(e) => {
                        tracing::warn!("{e}");
                        continue;
                    }
                };
                match output.try_send(AudioPacket { seq, capture_us, payload }) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        stats.audio_dropped_sending.fetch_add(1, Relaxed);
                    }
                    Err(TrySendError::Closed(_)) => return,
                }
                seq += 1;
            }
        })
        .expect("spawning the audio sender thread")
}
