//! Where this peer's sound comes from: the microphone (through cpal), a test tone, or a
//! WAV file. Each hands out 10 ms frames with the wall-clock time of their first sample.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use super::device::{DeviceError, StreamHealth, open_microphone};
use super::device_stream::DeviceStream;
use super::device_watch::{DeviceEvent, DeviceWatch};
use super::pacer::Pacer;
use super::tone::{DEFAULT_TONE_HZ, Tone};
use super::{AudioFrame, FRAME_SAMPLES, FRAME_US, SAMPLE_RATE};
use crate::net::clock::now_us;

/// `--audio-source`, as the user wrote it.
#[derive(Clone, Debug, PartialEq)]
pub enum AudioSource {
    /// The microphone if there is one, else no sound.
    Auto,
    Mic,
    /// A sine at this frequency.
    Tone(f32),
    Wav(PathBuf),
    None,
}

impl std::str::FromStr for AudioSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "mic" => Self::Mic,
            "tone" => Self::Tone(DEFAULT_TONE_HZ),
            "none" => Self::None,
            _ => match s.strip_prefix("tone:") {
                Some(hz) => match hz.parse::<f32>() {
                    Ok(hz) if (20.0..=20_000.0).contains(&hz) => Self::Tone(hz),
                    _ => return Err(format!("tone frequency \"{hz}\" is not a number of Hz between 20 and 20000")),
                },
                None if s.to_ascii_lowercase().ends_with(".wav") => Self::Wav(PathBuf::from(s)),
                None => return Err(format!("\"{s}\" is not auto, mic, tone, tone:HZ, none or a PATH.wav file")),
            },
        })
    }
}

/// A source that was checked at start-up and can be opened for each call.
#[derive(Clone, Debug)]
pub enum MicPlan {
    /// The named (or default) microphone.
    Device(Option<String>),
    Tone(f32),
    /// A WAV file's samples, 48 kHz mono, played in a loop.
    Samples(Arc<[f32]>),
}

/// An open source.
pub struct Microphone {
    inner: Inner,
}

enum Inner {
    Device(DeviceInput),
    Tone(Tone, Pacer),
    Samples(Arc<[f32]>, usize, Pacer),
}

/// A microphone's stream and the rings its callback fills, reopened when it stops (see
/// `device_watch`).
struct DeviceInput {
    wanted: Option<String>,
    health: Arc<StreamHealth>,
    watch: DeviceWatch,
    /// `None` after a reopen failed, until the watch tries again.
    stream: Option<DeviceStream>,
    ring: rtrb::Consumer<f32>,
    stamps: rtrb::Consumer<(u64, u64)>,
    /// 48 kHz samples read so far, and the newest stamp at or before that point.
    read: u64,
    stamp: (u64, u64),
}

impl DeviceInput {
    fn open(wanted: Option<String>) -> Result<Self, DeviceError> {
        let health = Arc::new(StreamHealth::default());
        let (stream, ring, stamps) = Self::start(wanted.as_deref(), &health)?;
        let now = now_us();
        Ok(Self {
            wanted,
            health,
            watch: DeviceWatch::new(now),
            stream: Some(stream),
            ring,
            stamps,
            read: 0,
            stamp: (0, now),
        })
    }

    /// A stream on fresh rings; `health` counts on from the streams before.
    #[allow(clippy::type_complexity)]
    fn start(
        wanted: Option<&str>,
        health: &Arc<StreamHealth>,
    ) -> Result<(DeviceStream, rtrb::Consumer<f32>, rtrb::Consumer<(u64, u64)>), DeviceError> {
        let _quiet = super::device::quiet_alsa();
        let (producer, ring) = rtrb::RingBuffer::new(RING_SAMPLES);
        let (stamp_producer, stamps) = rtrb::RingBuffer::new(256);
        let stream = open_microphone(wanted, producer, stamp_producer, Arc::clone(health))?;
        Ok((stream, ring, stamps))
    }

    /// Reopens the stream if the watch says it has stopped.
    fn keep_alive(&mut self) {
        let (callbacks, errors) = self.health.counts();
        match self.watch.observe(now_us(), callbacks, errors) {
            None => {}
            Some(DeviceEvent::Recovered) => tracing::info!("the microphone hears again"),
            Some(DeviceEvent::Reopen { why, first }) => {
                if first {
                    tracing::warn!("the microphone {}; reopening it", why.verb());
                }
                // The old stream goes first: a device may take one stream at a time.
                self.stream = None;
                match Self::start(self.wanted.as_deref(), &self.health) {
                    Ok((stream, ring, stamps)) => {
                        (self.stream, self.ring, self.stamps) = (Some(stream), ring, stamps);
                        (self.read, self.stamp) = (0, (0, now_us()));
                    }
                    // The watch tries again in 5 s.
                    Err(e) => tracing::debug!("could not reopen the microphone: {e}"),
                }
            }
        }
    }

    /// The next 10 ms if the device has captured them, and the capture time of the first
    /// sample.
    fn next_frame(&mut self) -> Option<(AudioFrame, u64)> {
        if self.ring.slots() < FRAME_SAMPLES {
            return None;
        }
        let mut frame = [0.0; FRAME_SAMPLES];
        let chunk = self.ring.read_chunk(FRAME_SAMPLES).expect("slots checked");
        let (a, b) = chunk.as_slices();
        frame[..a.len()].copy_from_slice(a);
        frame[a.len()..].copy_from_slice(b);
        chunk.commit_all();
        while let Ok(next) = self.stamps.peek()
            && next.0 <= self.read
        {
            self.stamp = *next;
            let _ = self.stamps.pop();
        }
        let captured = self.stamp.1 + (self.read - self.stamp.0) * FRAME_US / FRAME_SAMPLES as u64;
        self.read += FRAME_SAMPLES as u64;
        Some((frame, captured))
    }
}

/// How long the ring from the device callback holds: one second.
const RING_SAMPLES: usize = SAMPLE_RATE as usize;

impl Microphone {
    /// Opens the source. A device stays open until the value is dropped; this must happen
    /// on the thread that reads it.
    pub fn open(plan: &MicPlan) -> Result<Self, DeviceError> {
        let inner = match plan {
            MicPlan::Device(wanted) => Inner::Device(DeviceInput::open(wanted.clone())?),
            MicPlan::Tone(hz) => Inner::Tone(Tone::new(*hz), Pacer::new()),
            MicPlan::Samples(samples) => Inner::Samples(Arc::clone(samples), 0, Pacer::new()),
        };
        Ok(Self { inner })
    }

    /// The next 10 ms and the capture time of its first sample; `None` once `stop` is set.
    pub fn next_frame(&mut self, stop: &AtomicBool) -> Option<(AudioFrame, u64)> {
        let limit = Duration::from_millis(50);
        loop {
            if stop.load(Relaxed) {
                return None;
            }
            match &mut self.inner {
                // A generated frame stands for 10 ms a microphone would have been hearing
                // until now: its first sample is dated a frame ago, as a device's would be.
                Inner::Tone(tone, pacer) => {
                    if pacer.wait(limit) {
                        return Some((tone.next_frame(), now_us() - FRAME_US));
                    }
                }
                Inner::Samples(samples, position, pacer) => {
                    if pacer.wait(limit) {
                        let mut frame = [0.0; FRAME_SAMPLES];
                        for sample in &mut frame {
                            *sample = samples[*position];
                            *position = (*position + 1) % samples.len();
                        }
                        return Some((frame, now_us() - FRAME_US));
                    }
                }
                Inner::Device(input) => match input.next_frame() {
                    Some(frame) => return Some(frame),
                    None => {
                        input.keep_alive();
                        std::thread::sleep(Duration::from_millis(2));
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!("auto".parse(), Ok(AudioSource::Auto));
        assert_eq!("tone".parse(), Ok(AudioSource::Tone(440.0)));
        assert_eq!("tone:880".parse(), Ok(AudioSource::Tone(880.0)));
        assert_eq!("talk.WAV".parse(), Ok(AudioSource::Wav("talk.WAV".into())));
        assert!("tone:5".parse::<AudioSource>().unwrap_err().contains("between 20 and 20000"));
        assert!("speaker".parse::<AudioSource>().unwrap_err().contains("PATH.wav"));
    }

    #[test]
    fn generated_sources_keep_real_time_and_loop() {
        let stop = AtomicBool::new(false);
        let samples: Arc<[f32]> = (0..700).map(|i| i as f32).collect();
        let mut source = Microphone::open(&MicPlan::Samples(samples)).unwrap();
        let started = std::time::Instant::now();
        let (first, t0) = source.next_frame(&stop).unwrap();
        let (second, t1) = source.next_frame(&stop).unwrap();
        let (_, t2) = source.next_frame(&stop).unwrap();
        assert_eq!(first[479], 479.0);
        assert_eq!(second[0], 480.0);
        assert_eq!(second[220], 0.0, "loops after 700 samples");
        assert!(t1 > t0 && t2 > t1);
        assert!(started.elapsed() >= Duration::from_millis(20), "paced, not as fast as it can");
        stop.store(true, Relaxed);
        assert!(source.next_frame(&stop).is_none());
    }
}
