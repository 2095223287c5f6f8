//! The audio playout thread: packets from the network go into the jitter buffer; whenever
//! the sink is about to run dry, the next frame comes out (decoded, concealed or silent)
//! and goes to the sink (and to the echo canceller). It measures mouth-to-ear latency as it goes and tells the video
//! path how long sound takes, for lip sync.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::echo::EchoCanceller;
use super::jitter::{JitterBuffer, Playout};
use super::opus_codec::AudioDecoder;
use super::speaker::{Speaker, SpeakerPlan};
use super::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::lip_sync::LipSync;
use crate::net::clock::{ClockSync, now_us};
use crate::stats::CallStats;

/// An audio packet as it came off the network.
#[derive(Debug)]
pub struct ReceivedAudio {
    pub seq: u64,
    /// Capture time on the peer's clock.
    pub capture_us: u64,
    pub payload: Vec<u8>,
    /// Packet `seq - 1` again, captured one frame earlier (redundant audio).
    pub previous: Option<Vec<u8>>,
}

/// After this many frames of silence (half a second) the sound has stopped: pictures are
/// no longer held for it.
const SILENCE_ENDS_SYNC_FRAMES: u32 = 50;

/// Everything the playout thread needs.
pub struct AudioPlayout {
    pub input: Receiver<ReceivedAudio>,
    pub sink: SpeakerPlan,
    pub clock: Arc<Mutex<ClockSync>>,
    pub stats: Arc<CallStats>,
    pub lip_sync: Arc<LipSync>,
    /// Shown every frame played, to take it out of the microphone again.
    pub echo: Option<Arc<EchoCanceller>>,
    pub stop: Arc<AtomicBool>,
}

impl AudioPlayout {
    pub fn spawn(self) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("audio-playout".into())
            .spawn(move || self.run())
            .expect("spawning the audio playout thread")
    }

    fn run(self) {
        let mut decoder = match AudioDecoder::new() {
            Ok(decoder) => decoder,
            Err(e) => return eprintln!("chat: {e}; the peer's sound will not play"),
        };
        let speaker = Speaker::open(&self.sink).or_else(|e| {
            eprintln!("chat: {e}; the peer's sound will not play");
            Speaker::open(&SpeakerPlan::Discard)
        });
        let Ok(mut speaker) = speaker else { return };
        let mut jitter = JitterBuffer::new();
        let mut delay_ms: Option<f64> = None;
        let mut silent_frames = 0u32;
        while !self.stop.load(Relaxed) {
            match self.input.recv_timeout(Duration::from_millis(2)) {
                Ok(packet) => self.insert(&mut jitter, packet),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(packet) = self.input.try_recv() {
                self.insert(&mut jitter, packet);
            }
            while speaker.wants_more() {
                let mut frame = [0.0; FRAME_SAMPLES];
                let now = now_us();
                tracing::trace!(now, "sound frame wanted");
                match jitter.pop(now) {
                    Playout::Packet { capture_us, payload, .. } => {
                        if let Err(e) = decoder.decode(&payload, &mut frame) {
                            tracing::debug!("{e}");
                            self.stats.audio_decode_errors.fetch_add(1, Relaxed);
                            decoder.conceal(&mut frame);
                        }
                        let heard_us = now_us() + speaker.delay_us();
                        let ms = (heard_us as i64).saturating_sub(capture_us) as f64 / 1000.0;
                        self.stats.record_mouth_to_ear(ms);
                        // Smoothed, so pictures are not held by each frame's own jitter.
                        let smoothed = delay_ms.map_or(ms, |d| d + (ms - d) / 8.0);
                        delay_ms = Some(smoothed);
                        self.lip_sync.set_audio_delay(Some((smoothed * 1000.0).max(1.0) as u64));
                        silent_frames = 0;
                    }
                    Playout::Conceal => decoder.conceal(&mut frame),
                    Playout::Silence => {
                        silent_frames += 1;
                        if silent_frames > SILENCE_ENDS_SYNC_FRAMES {
                            delay_ms = None;
                            self.lip_sync.set_audio_delay(None);
                        }
                    }
                }
                if let Some(echo) = &self.echo {
                    echo.far_end(&frame, speaker.delay_us());
                }
                speaker.play(&frame);
            }
            let buffered_ms =
                jitter.depth_frames() as u64 * 10 + speaker.queued() as u64 * 1000 / u64::from(SAMPLE_RATE);
            self.stats.set_audio_buffer(jitter.counters(), buffered_ms);
        }
        self.lip_sync.set_audio_delay(None);
    }

    fn insert(&self, jitter: &mut JitterBuffer, packet: ReceivedAudio) {
        let captured = self.clock.lock().unwrap_or_else(|e| e.into_inner()).to_local_us(packet.capture_us);
        let now = now_us();
        let copies = u8::from(packet.previous.is_some());
        tracing::trace!(seq = packet.seq, captured, now, copies, "sound packet arrived");
        jitter.insert(packet.seq, captured, packet.payload, now);
        if let Some(previous) = packet.previous {
            jitter.insert_previous(packet.seq, captured, previous, now);
        }
    }
}
