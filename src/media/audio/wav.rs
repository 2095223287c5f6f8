//! WAV files as a sound source (read whole, mixed to mono and resampled to 48 kHz, looped)
//! and as a sink (48 kHz mono 16-bit, what the peer's sound would have played).

use std::path::{Path, PathBuf};

use super::SAMPLE_RATE;
use super::resample::Resampler;

/// Longest WAV file accepted as a source: ten minutes.
pub const MAX_WAV_SECONDS: u32 = 600;

/// A WAV file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read the WAV file {path}: {error}")]
    Read { path: PathBuf, error: hound::Error },
    #[error("the WAV file {path} is {seconds} s long; the limit is {MAX_WAV_SECONDS} s (cut it shorter)")]
    TooLong { path: PathBuf, seconds: u64 },
    #[error("the WAV file {path} has no samples")]
    Empty { path: PathBuf },
    #[error("cannot write the WAV file {path}: {error}")]
    Write { path: PathBuf, error: hound::Error },
}

/// Reads a WAV file as 48 kHz mono samples in -1.0..=1.0.
pub fn read_wav(path: &Path) -> Result<Vec<f32>, WavError> {
    let read_error = |error| WavError::Read { path: path.to_path_buf(), error };
    let mut reader = hound::WavReader::open(path).map_err(read_error)?;
    let spec = reader.spec();
    let seconds = u64::from(reader.duration()) / u64::from(spec.sample_rate.max(1));
    if seconds > u64::from(MAX_WAV_SECONDS) {
        return Err(WavError::TooLong { path: path.to_path_buf(), seconds });
    }
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>().map_err(read_error)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(read_error)?
        }
    };
    let mono = interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32);
    let out: Vec<f32> = if spec.sample_rate == SAMPLE_RATE {
        mono.collect()
    } else {
        let mut resampler = Resampler::new(spec.sample_rate, SAMPLE_RATE);
        let mut out = Vec::with_capacity(
            interleaved.len() / channels * SAMPLE_RATE as usize / spec.sample_rate.max(1) as usize + 1,
        );
        mono.for_each(|x| resampler.push(x, |y| out.push(y)));
        out
    };
    if out.is_empty() {
        return Err(WavError::Empty { path: path.to_path_buf() });
    }
    Ok(out)
}

/// A WAV file being written.
pub struct WavSink {
    path: PathBuf,
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
}

impl WavSink {
    pub fn create(path: &Path) -> Result<Self, WavError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)
            .map_err(|error| WavError::Write { path: path.to_path_buf(), error })?;
        Ok(Self { path: path.to_path_buf(), writer })
    }

    pub fn write(&mut self, samples: &[f32]) -> Result<(), WavError> {
        for &s in samples {
            let v = (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16;
            self.writer.write_sample(v).map_err(|error| WavError::Write { path: self.path.clone(), error })?;
        }
        Ok(())
    }

    /// Writes the final lengths into the header.
    pub fn finish(self) -> Result<(), WavError> {
        self.writer.finalize().map_err(|error| WavError::Write { path: self.path, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::analysis::dominant_frequency;

    #[test]
    fn wav_files_round_trip_and_other_formats_are_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let tone: Vec<f32> =
            (0..4800).map(|n| 0.5 * (n as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin()).collect();
        let mut sink = WavSink::create(&path).unwrap();
        sink.write(&tone).unwrap();
        sink.finish().unwrap();
        let back = read_wav(&path).unwrap();
        assert_eq!(back.len(), tone.len());
        assert!(back.iter().zip(&tone).all(|(a, b)| (a - b).abs() < 1e-3));

        // Stereo 44.1 kHz 24-bit: mixed down and resampled.
        let stereo = dir.path().join("b.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&stereo, spec).unwrap();
        for n in 0..44_100 {
            let v = ((n as f32 * 660.0 * std::f32::consts::TAU / 44_100.0).sin() * 4_000_000.0) as i32;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let back = read_wav(&stereo).unwrap();
        assert!((back.len() as i64 - 48_000).abs() <= 1);
        assert!((dominant_frequency(&back, 48_000) - 660.0).abs() <= 1.0);

        std::fs::write(dir.path().join("c.wav"), b"RIFF not really").unwrap();
        assert!(matches!(read_wav(&dir.path().join("c.wav")), Err(WavError::Read { .. })));
    }
}
