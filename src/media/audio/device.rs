//! Sound devices through cpal: finding them by name or index, and the two real-time
//! callbacks. The microphone callback mixes to mono, resamples to 48 kHz and pushes into
//! a lock-free ring with a capture timestamp; the speaker callback pulls from a ring,
//! resamples to the device's rate and copies to every channel. Neither locks nor
//! allocates.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample, Stream, StreamConfig};

use super::SAMPLE_RATE;
use super::device_stream::DeviceStream;
use super::resample::Resampler;
use crate::net::clock::now_us;

/// A sound device could not be found or opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// No device of that kind (or none by that name or number).
    #[error("no {kind} {wanted} (chat --list-devices shows what there is)")]
    NotFound { kind: &'static str, wanted: String },
    /// The device would not say which formats it takes.
    #[error("the {kind} \"{name}\" has no usable format: {reason}")]
    NoFormat { kind: &'static str, name: String, reason: String },
    /// The device refused to start.
    #[error("cannot open the {kind} \"{name}\": {reason}")]
    Open { kind: &'static str, name: String, reason: String },
}

/// Where the capture timestamps go: (index of the first 48 kHz sample of a callback,
/// its capture time in µs on the wall clock).
pub type Stamps = rtrb::Producer<(u64, u64)>;

/// Keeps alsa-lib's own error printing (a screenful when there is no sound card) off the
/// terminal for as long as the value lives, on this thread.
pub fn quiet_alsa() -> impl Sized {
    #[cfg(target_os = "linux")]
    return alsa::Output::local_error_handler().ok();
    #[cfg(not(target_os = "linux"))]
    return ();
}

fn device_name(device: &cpal::Device) -> String {
    device.description().map(|d| d.name().to_string()).unwrap_or_else(|_| "unnamed device".into())
}

/// The names of the input and output devices, in the order `--mic N`/`--speaker N` count.
pub fn list_devices() -> (Vec<String>, Vec<String>) {
    let _quiet = quiet_alsa();
    let host = cpal::default_host();
    let names = |devices: Result<Vec<cpal::Device>, _>| -> Vec<String> {
        devices.map(|d| d.iter().map(device_name).collect()).unwrap_or_default()
    };
    (
        names(host.input_devices().map(|d| d.collect::<Vec<_>>())),
        names(host.output_devices().map(|d| d.collect::<Vec<_>>())),
    )
}

/// Which way sound flows through a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A microphone.
    Input,
    /// A speaker.
    Output,
}

impl Direction {
    fn kind(self) -> &'static str {
        match self {
            Self::Input => "microphone",
            Self::Output => "speaker",
        }
    }
}

/// The default device, or the one named (exactly, then by substring) or numbered.
fn find(direction: Direction, wanted: Option<&str>) -> Result<cpal::Device, DeviceError> {
    let host = cpal::default_host();
    let input = direction == Direction::Input;
    let not_found = || DeviceError::NotFound {
        kind: direction.kind(),
        wanted: wanted.map_or("device".into(), |w| format!("\"{w}\"")),
    };
    let Some(wanted) = wanted else {
        let device = if input { host.default_input_device() } else { host.default_output_device() };
        return device.ok_or_else(not_found);
    };
    let devices: Vec<cpal::Device> = if input {
        host.input_devices().map(|d| d.collect()).unwrap_or_default()
    } else {
        host.output_devices().map(|d| d.collect()).unwrap_or_default()
    };
    if let Ok(index) = wanted.parse::<usize>() {
        return devices.into_iter().nth(index).ok_or_else(not_found);
    }
    let names: Vec<String> = devices.iter().map(device_name).collect();
    let position = names.iter().position(|n| n == wanted).or_else(|| names.iter().position(|n| n.contains(wanted)));
    position.and_then(|i| devices.into_iter().nth(i)).ok_or_else(not_found)
}

/// A device found, with the format it offers and the stream configuration chat asks for.
struct Chosen {
    direction: Direction,
    device: cpal::Device,
    name: String,
    format: SampleFormat,
    config: StreamConfig,
}

impl Chosen {
    fn new(direction: Direction, wanted: Option<&str>) -> Result<Self, DeviceError> {
        let device = find(direction, wanted)?;
        let name = device_name(&device);
        let supported = match direction {
            Direction::Input => device.default_input_config(),
            Direction::Output => device.default_output_config(),
        }
        .map_err(|e| DeviceError::NoFormat {
            kind: direction.kind(),
            name: name.clone(),
            reason: e.to_string(),
        })?;
        let config = prefer_48k(supported.config(), &device, direction);
        Ok(Self { direction, device, name, format: supported.sample_format(), config })
    }

    fn unsupported_format(self) -> DeviceError {
        DeviceError::NoFormat {
            kind: self.direction.kind(),
            reason: format!("samples in {:?} are not supported", self.format),
            name: self.name,
        }
    }

    /// Starts the stream just `built` for this device, or says why it would not.
    fn start(&self, built: Result<Stream, cpal::Error>) -> Result<DeviceStream, DeviceError> {
        use cpal::traits::StreamTrait;
        let open_error = |e: cpal::Error| DeviceError::Open {
            kind: self.direction.kind(),
            name: self.name.clone(),
            reason: e.to_string(),
        };
        let stream = built.map_err(open_error)?;
        stream.play().map_err(open_error)?;
        tracing::info!(name = self.name, config = ?self.config, "{} open", self.direction.kind());
        Ok(DeviceStream::new(stream, self.direction.kind()))
    }
}

/// Checks that a device can be found and says which formats it takes; its name.
pub fn probe(direction: Direction, wanted: Option<&str>) -> Result<String, DeviceError> {
    let _quiet = quiet_alsa();
    Ok(Chosen::new(direction, wanted)?.name)
}

/// Opens the microphone; samples flow into `ring` until the stream is dropped.
pub fn open_microphone(
    wanted: Option<&str>,
    ring: rtrb::Producer<f32>,
    stamps: Stamps,
    health: Arc<StreamHealth>,
) -> Result<DeviceStream, DeviceError> {
    let chosen = Chosen::new(Direction::Input, wanted)?;
    let (device, config) = (&chosen.device, &chosen.config);
    let built = match chosen.format {
        SampleFormat::F32 => build_input::<f32>(device, config, ring, stamps, health),
        SampleFormat::I16 => build_input::<i16>(device, config, ring, stamps, health),
        SampleFormat::I32 => build_input::<i32>(device, config, ring, stamps, health),
        SampleFormat::U16 => build_input::<u16>(device, config, ring, stamps, health),
        _ => return Err(chosen.unsupported_format()),
    };
    chosen.start(built)
}

/// Device period asked for: 10 ms, one audio frame. Devices default to far longer
/// buffers (PulseAudio's ALSA plugin to hundreds of milliseconds), all of it delay.
const PERIOD_MS: u32 = 10;

/// Asks for 48 kHz when the device takes it (no resampling), and a 10 ms period when the
/// device allows one.
fn prefer_48k(mut config: StreamConfig, device: &cpal::Device, direction: Direction) -> StreamConfig {
    let ranges: Vec<_> = if direction == Direction::Input {
        device.supported_input_configs().map(|c| c.collect()).unwrap_or_default()
    } else {
        device.supported_output_configs().map(|c| c.collect()).unwrap_or_default()
    };
    if ranges.iter().any(|r| r.channels() == config.channels && r.contains_rate(SAMPLE_RATE)) {
        config.sample_rate = SAMPLE_RATE;
    }
    let period = config.sample_rate * PERIOD_MS / 1000;
    let fits = ranges.iter().any(|r| {
        r.channels() == config.channels
            && matches!(*r.buffer_size(), cpal::SupportedBufferSize::Range { min, max } if (min..=max).contains(&period))
    });
    if fits {
        config.buffer_size = cpal::BufferSize::Fixed(period);
    }
    config
}

fn build_input<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    mut ring: rtrb::Producer<f32>,
    mut stamps: Stamps,
    health: Arc<StreamHealth>,
) -> Result<Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let mut resampler = Resampler::new(config.sample_rate, SAMPLE_RATE);
    let mut written = 0u64;
    let reported = Arc::clone(&health);
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], info: &cpal::InputCallbackInfo| {
            health.callback();
            let ts = info.timestamp();
            let age = ts.callback.checked_duration_since(ts.capture).unwrap_or(Duration::ZERO);
            let _ = stamps.push((written, now_us().saturating_sub(age.as_micros() as u64)));
            for frame in data.chunks(channels) {
                let mono = frame.iter().map(|&s| f32::from_sample(s)).sum::<f32>() / channels as f32;
                resampler.push(mono, |y| {
                    // A full ring means the reader stalled: the sample is lost, time goes on.
                    let _ = ring.push(y);
                    written += 1;
                });
            }
        },
        move |e| reported.error("microphone", &e),
        None,
    )
}

/// How a device's stream is doing: how many times its callback ran and how many errors it
/// reported (see `device_watch`). Both counts run on across reopened streams.
#[derive(Debug, Default)]
pub struct StreamHealth {
    callbacks: AtomicU64,
    errors: AtomicU64,
}

impl StreamHealth {
    /// (callbacks, errors) so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.callbacks.load(Relaxed), self.errors.load(Relaxed))
    }

    fn callback(&self) {
        self.callbacks.fetch_add(1, Relaxed);
    }

    /// Logs a stream's first error and counts the rest: a dead ALSA stream repeats the
    /// same one thousands of times a second.
    fn error(&self, kind: &'static str, e: &impl std::fmt::Display) {
        if self.errors.fetch_add(1, Relaxed) == 0 {
            tracing::warn!("{kind}: {e}");
        } else {
            tracing::debug!("{kind}: {e}");
        }
    }
}

/// What the speaker callback reports: how far behind the callback the sound comes out,
/// how many 48 kHz samples it asks for at a time, and how its stream is doing.
#[derive(Debug, Default)]
pub struct SpeakerTiming {
    pub delay_us: AtomicU64,
    pub period_samples: AtomicU64,
    pub health: StreamHealth,
}

/// Opens the speaker; it plays what arrives in `ring` until the stream is dropped.
pub fn open_speaker(
    wanted: Option<&str>,
    ring: Arc<Mutex<rtrb::Consumer<f32>>>,
    timing: Arc<SpeakerTiming>,
) -> Result<DeviceStream, DeviceError> {
    let chosen = Chosen::new(Direction::Output, wanted)?;
    let (device, config) = (&chosen.device, &chosen.config);
    let built = match chosen.format {
        SampleFormat::F32 => build_output::<f32>(device, config, ring, timing),
        SampleFormat::I16 => build_output::<i16>(device, config, ring, timing),
        SampleFormat::I32 => build_output::<i32>(device, config, ring, timing),
        SampleFormat::U16 => build_output::<u16>(device, config, ring, timing),
        _ => return Err(chosen.unsupported_format()),
    };
    chosen.start(built)
}

fn build_output<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    ring: Arc<Mutex<rtrb::Consumer<f32>>>,
    timing: Arc<SpeakerTiming>,
) -> Result<Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    let rate = u64::from(config.sample_rate.max(1));
    let mut resampler = Resampler::new(SAMPLE_RATE, config.sample_rate);
    let reported = Arc::clone(&timing);
    device.build_output_stream::<T, _, _>(
        *config,
        move |data: &mut [T], info: &cpal::OutputCallbackInfo| {
            timing.health.callback();
            let ts = info.timestamp();
            let ahead = ts.playback.checked_duration_since(ts.callback).unwrap_or(Duration::ZERO);
            let frames = (data.len() / channels) as u64;
            timing.delay_us.store(ahead.as_micros() as u64, Relaxed);
            timing.period_samples.store(frames * u64::from(SAMPLE_RATE) / rate, Relaxed);
            // Only a stream being replaced (device_watch) holds the ring at the same time:
            // this one plays silence rather than wait.
            let mut ring = ring.try_lock().ok();
            for frame in data.chunks_mut(channels) {
                let v = resampler.pull(|| ring.as_mut().and_then(|r| r.pop().ok()).unwrap_or(0.0));
                frame.fill(T::from_sample(v));
            }
        },
        move |e| reported.health.error("speaker", &e),
        None,
    )
}
