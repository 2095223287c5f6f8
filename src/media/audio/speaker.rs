//! Where the peer's sound goes: the speaker (through cpal), a WAV file, or nowhere. All
//! three take 10 ms frames into a ring and are drained in real time (the device by its
//! callback, the others by a paced thread), so the playout logic is the same for each.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::device::{DeviceError, SpeakerTiming, open_speaker};
use super::device_stream::DeviceStream;
use super::device_watch::{DeviceEvent, DeviceWatch};
use super::pacer::Pacer;
use super::wav::{WavError, WavSink};
use super::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};
use crate::net::clock::now_us;

/// `--audio-sink`, as the user wrote it.
#[derive(Clone, Debug, PartialEq)]
pub enum AudioSink {
    /// The speaker if there is one, else nowhere.
    Auto,
    Speaker,
    Wav(PathBuf),
    None,
}

impl std::str::FromStr for AudioSink {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "speaker" => Self::Speaker,
            "none" => Self::None,
            _ if s.to_ascii_lowercase().ends_with(".wav") => Self::Wav(PathBuf::from(s)),
            _ => return Err(format!("\"{s}\" is not auto, speaker, none or a PATH.wav file")),
        })
    }
}

/// A sink checked at start-up, opened for each call.
#[derive(Clone, Debug)]
pub enum SpeakerPlan {
    Device(Option<String>),
    Wav(PathBuf),
    /// Played in time to nowhere: the call's audio figures still count.
    Discard,
}

/// The speaker could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Wav(#[from] WavError),
}

/// An open sink.
pub struct Speaker {
    ring: rtrb::Producer<f32>,
    timing: Arc<SpeakerTiming>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

const RING_SAMPLES: usize = SAMPLE_RATE as usize;

impl Speaker {
    pub fn open(plan: &SpeakerPlan) -> Result<Self, SpeakerError> {
        let (ring, consumer) = rtrb::RingBuffer::new(RING_SAMPLES);
        let timing = Arc::new(SpeakerTiming::default());
        let stop = Arc::new(AtomicBool::new(false));
        let worker = match plan {
            SpeakerPlan::Device(wanted) => {
                // The stream lives on a thread of its own, which reports whether it opened
                // and then keeps it running.
                let (opened_tx, opened_rx) = std::sync::mpsc::sync_channel(1);
                let (wanted, timing, stop) = (wanted.clone(), Arc::clone(&timing), Arc::clone(&stop));
                let worker = std::thread::Builder::new()
                    .name("speaker".into())
                    .spawn(move || {
                        let _quiet = super::device::quiet_alsa();
                        let consumer = Arc::new(Mutex::new(consumer));
                        match open_speaker(wanted.as_deref(), Arc::clone(&consumer), Arc::clone(&timing)) {
                            Ok(stream) => {
                                let _ = opened_tx.send(Ok(()));
                                keep_playing(stream, wanted.as_deref(), &consumer, &timing, &stop);
                            }
                            Err(e) => {
                                let _ = opened_tx.send(Err(e));
                            }
                        }
                    })
                    .expect("spawning the speaker thread");
                opened_rx.recv().unwrap_or_else(|_| {
                    Err(DeviceError::Open { kind: "speaker", name: "?".into(), reason: "its thread ended".into() })
                })?;
                worker
            }
            SpeakerPlan::Wav(path) => {
                spawn_paced(consumer, Some(WavSink::create(path)?), Arc::clone(&timing), Arc::clone(&stop))
            }
            SpeakerPlan::Discard => spawn_paced(consumer, None, Arc::clone(&timing), Arc::clone(&stop)),
        };
        Ok(Self { ring, timing, stop, worker: Some(worker) })
    }

    /// Samples queued and not yet handed to the device.
    pub fn queued(&self) -> usize {
        RING_SAMPLES - self.ring.slots()
    }

    /// Whether the sink will run dry before another frame could be added in time.
    pub fn wants_more(&self) -> bool {
        let period = self.timing.period_samples.load(Relaxed) as usize;
        self.queued() < period.max(FRAME_SAMPLES) + FRAME_SAMPLES / 2
    }

    /// Microseconds from now until a sample queued now is heard.
    pub fn delay_us(&self) -> u64 {
        self.queued() as u64 * 1_000_000 / u64::from(SAMPLE_RATE) + self.timing.delay_us.load(Relaxed)
    }

    pub fn play(&mut self, frame: &AudioFrame) {
        let _ = self.ring.push_partial_slice(frame);
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Watches the speaker's stream until `stop`, and reopens it on the same ring whenever it
/// stops playing (see `device_watch`).
fn keep_playing(
    stream: DeviceStream,
    wanted: Option<&str>,
    consumer: &Arc<Mutex<rtrb::Consumer<f32>>>,
    timing: &Arc<SpeakerTiming>,
    stop: &AtomicBool,
) {
    let mut stream = Some(stream);
    let mut watch = DeviceWatch::new(now_us());
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        let (callbacks, errors) = timing.health.counts();
        match watch.observe(now_us(), callbacks, errors) {
            None => {}
            Some(DeviceEvent::Recovered) => tracing::info!("the speaker plays again"),
            Some(DeviceEvent::Reopen { why, first }) => {
                if first {
                    tracing::warn!("the speaker {}; reopening it", why.verb());
                }
                // The old stream goes first: a device may take one stream at a time.
                stream = None;
                match open_speaker(wanted, Arc::clone(consumer), Arc::clone(timing)) {
                    Ok(fresh) => stream = Some(fresh),
                    // The watch tries again in 5 s.
                    Err(e) => tracing::debug!("could not reopen the speaker: {e}"),
                }
            }
        }
    }
    drop(stream);
}

/// A thread that takes a frame every 10 ms, as a sound card would, and writes it to `wav`.
fn spawn_paced(
    mut ring: rtrb::Consumer<f32>,
    mut wav: Option<WavSink>,
    timing: Arc<SpeakerTiming>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    timing.period_samples.store(FRAME_SAMPLES as u64, Relaxed);
    std::thread::Builder::new()
        .name("audio-sink".into())
        .spawn(move || {
            let mut pacer = Pacer::new();
            let mut frame = [0.0; FRAME_SAMPLES];
            while !stop.load(Relaxed) {
                if !pacer.wait(Duration::from_millis(50)) {
                    continue;
                }
                frame.fill(0.0);
                let available = ring.slots().min(FRAME_SAMPLES);
                if let Ok(chunk) = ring.read_chunk(available) {
                    let (a, b) = chunk.as_slices();
                    frame[..a.len()].copy_from_slice(a);
                    frame[a.len()..a.len() + b.len()].copy_from_slice(b);
                    chunk.commit_all();
                }
                if let Some(sink) = &mut wav
                    && let Err(e) = sink.write(&frame)
                {
                    eprintln!("chat: {e}; no longer writing the peer's sound");
                    wav = None;
                }
            }
            if let Some(sink) = wav
                && let Err(e) = sink.finish()
            {
                eprintln!("chat: {e}");
            }
        })
        .expect("spawning the audio sink thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_parse() {
        assert_eq!("speaker".parse(), Ok(AudioSink::Speaker));
        assert_eq!("out.wav".parse(), Ok(AudioSink::Wav("out.wav".into())));
        assert!("tone".parse::<AudioSink>().unwrap_err().contains("PATH.wav"));
    }

    #[test]
    fn a_wav_sink_plays_in_real_time_and_fills_gaps_with_silence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut speaker = Speaker::open(&SpeakerPlan::Wav(path.clone())).unwrap();
        assert!(speaker.wants_more());
        speaker.play(&[0.5; FRAME_SAMPLES]);
        speaker.play(&[0.5; FRAME_SAMPLES]);
        assert!(!speaker.wants_more());
        assert!(speaker.delay_us() >= 10_000);
        while speaker.queued() > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(30));
        drop(speaker);
        let written = super::super::wav::read_wav(&path).unwrap();
        let loud = written.iter().filter(|&&s| (s - 0.5).abs() < 1e-3).count();
        assert_eq!(loud, 2 * FRAME_SAMPLES);
        assert!(written.len() >= 4 * FRAME_SAMPLES, "silence went on after the frames ran out");
    }
}
