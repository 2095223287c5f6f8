//! The audio sender thread: takes 10 ms frames from the source, takes the peer's echo out
//! of a microphone's (see `echo`), silences them while the
//! user has muted the microphone (the packets keep flowing, so the far end's timing and
//! lip sync carry on), encodes them with Opus and hands them to the network without
//! waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;

use tokio::sync::mpsc::{Sender, error::TrySendError};
use tokio::sync::watch;

use super::echo::EchoCanceller;
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

/// Everything the sender thread needs.
pub struct AudioSender {
    pub plan: MicPlan,
    /// The user's switches (muted or not).
    pub media: watch::Receiver<MediaState>,
    /// Takes the peer's sound out of the microphone's, when on.
    pub echo: Option<Arc<EchoCanceller>>,
    pub output: Sender<AudioPacket>,
    pub stats: Arc<CallStats>,
    pub stop: Arc<AtomicBool>,
}

impl AudioSender {
    /// Starts the thread; it ends when `stop` is set or the network side goes away.
    pub fn spawn(self) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("audio-sender".into())
            .spawn(move || self.run())
            .expect("spawning the audio sender thread")
    }

    fn run(self) {
        let mut encoder = match AudioEncoder::new() {
            Ok(encoder) => encoder,
            Err(e) => return eprintln!("chat: {e}; the peer will hear nothing"),
        };
        let mut source = match Microphone::open(&self.plan) {
            Ok(source) => source,
            Err(e) => return eprintln!("chat: {e}; the peer will hear nothing"),
        };
        let mut seq = 0u64;
        while let Some((mut frame, capture_us)) = source.next_frame(&self.stop) {
            if let Some(echo) = &self.echo {
                echo.near_end(&mut frame, capture_us);
                *self.stats.echo_path.lock().unwrap_or_else(|e| e.into_inner()) = Some(echo.path());
            }
            if self.media.borrow().muted {
                frame.fill(0.0);
            }
            let payload = match encoder.encode(&frame) {
                Ok(payload) => payload.to_vec(),
                Err(e) => {
                    tracing::warn!("{e}");
                    continue;
                }
            };
            match self.output.try_send(AudioPacket { seq, capture_us, payload }) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.stats.audio_dropped_sending.fetch_add(1, Relaxed);
                }
                Err(TrySendError::Closed(_)) => return,
            }
            seq += 1;
        }
    }
}
