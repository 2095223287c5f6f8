//! Opus at 48 kHz mono in 10 ms frames, through the `opus` crate over the system's
//! libopus: low-delay mode (2.5 ms look-ahead instead of 6.5 ms), and packet loss
//! concealment when a packet is missing.

use opus::{Application, Bitrate, Channels};

use super::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};

/// Bits per second: fullband speech at 24 kbit/s is transparent for a call, and with the
/// datagram header the stream stays well under 48 kbit/s.
pub const AUDIO_BITRATE: i32 = 24_000;
/// The largest packet Opus makes for one frame.
pub const MAX_OPUS_PACKET: usize = 1275;

/// libopus refused a setting or a packet.
#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    #[error("cannot start the Opus encoder: {0}")]
    Encoder(opus::Error),
    #[error("cannot start the Opus decoder: {0}")]
    Decoder(opus::Error),
    #[error("Opus could not encode a frame: {0}")]
    Encode(opus::Error),
    #[error("undecodable Opus packet from the peer: {0}")]
    Decode(opus::Error),
    #[error("an Opus packet from the peer holds {0} samples, not one 10 ms frame")]
    WrongDuration(usize),
}

pub struct AudioEncoder {
    inner: opus::Encoder,
    out: Vec<u8>,
}

impl AudioEncoder {
    pub fn new() -> Result<Self, OpusError> {
        let mut inner =
            opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::LowDelay).map_err(OpusError::Encoder)?;
        inner.set_bitrate(Bitrate::Bits(AUDIO_BITRATE)).map_err(OpusError::Encoder)?;
        Ok(Self { inner, out: vec![0; MAX_OPUS_PACKET] })
    }

    /// One frame in, one packet out.
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<&[u8], OpusError> {
        let len = self.inner.encode_float(frame, &mut self.out).map_err(OpusError::Encode)?;
        Ok(&self.out[..len])
    }
}

pub struct AudioDecoder {
    inner: opus::Decoder,
}

impl AudioDecoder {
    pub fn new() -> Result<Self, OpusError> {
        Ok(Self { inner: opus::Decoder::new(SAMPLE_RATE, Channels::Mono).map_err(OpusError::Decoder)? })
    }

    /// Decodes a packet into one frame. A packet that does not hold exactly one 10 ms
    /// frame is refused (and the caller conceals instead).
    pub fn decode(&mut self, packet: &[u8], frame: &mut AudioFrame) -> Result<(), OpusError> {
        let samples = opus::packet::get_nb_samples(packet, SAMPLE_RATE).map_err(OpusError::Decode)?;
        if samples != FRAME_SAMPLES {
            return Err(OpusError::WrongDuration(samples));
        }
        self.inner.decode_float(packet, frame, false).map_err(OpusError::Decode)?;
        Ok(())
    }

    /// Makes up a frame for a missing packet from what came before.
    pub fn conceal(&mut self, frame: &mut AudioFrame) {
        if self.inner.decode_float(&[], frame, false).is_err() {
            frame.fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::analysis::{dominant_frequency, rms_dbfs};
    use crate::media::audio::tone::Tone;

    #[test]
    fn a_tone_survives_the_codec_and_losses_are_concealed() {
        let (mut encoder, mut decoder) = (AudioEncoder::new().unwrap(), AudioDecoder::new().unwrap());
        let mut tone = Tone::new(440.0);
        let mut out = Vec::new();
        let mut bytes = 0;
        for i in 0..100 {
            let packet = encoder.encode(&tone.next_frame()).unwrap().to_vec();
            bytes += packet.len();
            let mut frame = [0.0; FRAME_SAMPLES];
            if i % 10 == 3 {
                decoder.conceal(&mut frame);
            } else {
                decoder.decode(&packet, &mut frame).unwrap();
            }
            out.extend_from_slice(&frame);
        }
        // 100 frames are one second: bytes * 8 is the bit rate.
        assert!(bytes * 8 <= 30_000, "{} bit/s", bytes * 8);
        let tail = &out[out.len() / 2..];
        assert!((dominant_frequency(tail, SAMPLE_RATE) - 440.0).abs() < 3.0);
        assert!((rms_dbfs(tail) + 15.0).abs() < 2.0, "{}", rms_dbfs(tail));
        let mut frame = [0.0; FRAME_SAMPLES];
        assert!(decoder.decode(&[0xff, 0xff, 0xff], &mut frame).is_err());
        assert!(decoder.decode(&[], &mut frame).is_err());
    }
}
