//! Sound: sources (microphone, tone, WAV) and sinks (speaker, WAV, nothing) at 48 kHz mono
//! in 10 ms frames, Opus, the adaptive jitter buffer, and the threads that join them to
//! the network. The device callbacks only move samples through lock-free rings.

pub mod analysis;
pub mod device;
pub mod device_stream;
pub mod device_watch;
pub mod echo;
pub mod echo_path;
pub mod jitter;
pub mod microphone;
pub mod opus_codec;
pub mod pacer;
pub mod playout;
pub mod resample;
pub mod sender;
pub mod speaker;
pub mod tone;
pub mod wav;

/// The one sample rate inside the program (Opus's native rate); devices are resampled.
pub const SAMPLE_RATE: u32 = 48_000;
/// One audio frame: 10 ms, short for low delay.
pub const FRAME_SAMPLES: usize = 480;
/// One frame's duration in microseconds.
pub const FRAME_US: u64 = 10_000;

/// 10 ms of mono audio at 48 kHz, samples in -1.0..=1.0.
pub type AudioFrame = [f32; FRAME_SAMPLES];
