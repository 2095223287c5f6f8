//! H.264 through openh264: `VideoEncoder` (real-time camera mode with bitrate control and
//! keyframes on demand) and `VideoDecoder`, both frame in, frame out.

use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

use super::frame::VideoFrame;

/// What went wrong in the codec.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// openh264 refused the encoder settings or failed to encode.
    #[error("H.264 encoder: {0}")]
    Encode(String),
    /// The bitstream could not be decoded (corrupt, or a P frame without its reference).
    #[error("H.264 decoder: {0}")]
    Decode(String),
}

/// One encoded picture: an H.264 access unit in Annex B form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    /// An IDR picture: decodable on its own, and the start of a group of pictures.
    pub keyframe: bool,
    /// Capture time of the picture, microseconds on the sender's wall clock.
    pub capture_us: u64,
}

/// Encoder settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncoderSettings {
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Seconds between IDR pictures when nobody asks for one (a safety net, not a need).
    pub keyframe_interval_secs: u32,
}

/// A default bitrate for a picture size: 0.07 bits per pixel per frame, within 150-8000 kbps.
/// 1280x720 at 30 fps gives 1935 kbps, 640x480 at 30 fps 645 kbps.
pub fn default_bitrate_kbps(width: usize, height: usize, fps: u32) -> u32 {
    let bps = width as f64 * height as f64 * f64::from(fps) * 0.07;
    ((bps / 1000.0) as u32).clamp(150, 8000)
}

/// openh264 in real-time mode, one thread; like libwebrtc it lets rate control skip a
/// picture when the bitrate budget is overspent.
pub struct VideoEncoder {
    inner: Encoder,
    /// Capture time of the first picture: rate control runs on times relative to it.
    first_capture_us: Option<u64>,
}

impl VideoEncoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, CodecError> {
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(settings.bitrate_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .skip_frames(true)
            .complexity(Complexity::Low)
            .num_threads(1)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                settings.fps.saturating_mul(settings.keyframe_interval_secs),
            ));
        let inner = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| CodecError::Encode(e.to_string()))?;
        Ok(Self { inner, first_capture_us: None })
    }

    /// Makes the next picture an IDR picture.
    pub fn request_keyframe(&mut self) {
        self.inner.force_intra_frame();
    }

    /// Encodes one picture. `None` if the encoder produced nothing for it.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Option<EncodedFrame>, CodecError> {
        let first = *self.first_capture_us.get_or_insert(frame.capture_us);
        let timestamp = Timestamp::from_millis(frame.capture_us.saturating_sub(first) / 1000);
        let stream = self.inner.encode_at(frame, timestamp).map_err(|e| CodecError::Encode(e.to_string()))?;
        let frame_type = stream.frame_type();
        if matches!(frame_type, FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        let data = stream.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedFrame { data, keyframe: frame_type == FrameType::IDR, capture_us: frame.capture_us }))
    }
}

/// openh264's decoder, returning owned I420 pictures.
pub struct VideoDecoder {
    inner: Decoder,
}

impl VideoDecoder {
    pub fn new() -> Result<Self, CodecError> {
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let inner = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| CodecError::Decode(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Decodes one access unit. `None` if it produced no picture.
    pub fn decode(&mut self, data: &[u8], capture_us: u64) -> Result<Option<VideoFrame>, CodecError> {
        let decoded = self.inner.decode(data).map_err(|e| CodecError::Decode(e.to_string()))?;
        Ok(decoded.map(|yuv| {
            let (width, height) = yuv.dimensions();
            let (sy, su, sv) = yuv.strides();
            VideoFrame::from_planes(width, height, [(yuv.y(), sy), (yuv.u(), su), (yuv.v(), sv)], capture_us)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pattern::{pattern_frame, read_index};
    use crate::media::quality::psnr;

    fn encoder(fps: u32, kbps: u32) -> VideoEncoder {
        VideoEncoder::new(EncoderSettings { fps, bitrate_kbps: kbps, keyframe_interval_secs: 0 }).unwrap()
    }

    #[test]
    fn pattern_survives_encode_and_decode_with_its_index() {
        let (w, h) = (640, 480);
        let mut enc = encoder(30, default_bitrate_kbps(w, h, 30));
        let mut dec = VideoDecoder::new().unwrap();
        let mut worst = f64::MAX;
        let mut decoded_count = 0;
        for i in 0..45 {
            let captured = u64::from(i) * 33_333;
            let original = pattern_frame(i, w, h, captured);
            // Rate control may skip a picture to pay for a keyframe; that is all it may skip.
            let Some(packet) = enc.encode(&original).unwrap() else { continue };
            assert_eq!(packet.keyframe, i == 0, "frame {i}");
            let decoded = dec.decode(&packet.data, packet.capture_us).unwrap().expect("a picture per frame");
            assert_eq!((decoded.width, decoded.height, decoded.capture_us), (w, h, captured));
            assert_eq!(read_index(&decoded), Some(i));
            worst = worst.min(psnr(&original.y, &decoded.y).unwrap());
            decoded_count += 1;
        }
        assert!(decoded_count >= 43, "only {decoded_count} of 45 pictures encoded");
        assert!(worst > 33.0, "worst PSNR {worst:.1} dB");
    }

    #[test]
    fn requested_keyframe_arrives_next() {
        let mut enc = encoder(30, 500);
        let frame = |i: u32| pattern_frame(i, 320, 240, u64::from(i) * 33_333);
        for i in 0..5 {
            enc.encode(&frame(i)).unwrap();
        }
        enc.request_keyframe();
        assert!(enc.encode(&frame(5)).unwrap().unwrap().keyframe);
        assert!(!enc.encode(&frame(6)).unwrap().unwrap().keyframe);
    }

    #[test]
    fn a_decoder_that_joins_late_waits_for_a_keyframe() {
        let mut enc = encoder(30, 500);
        let packets: Vec<_> =
            (0..4).map(|i| enc.encode(&pattern_frame(i, 320, 240, u64::from(i) * 33_333)).unwrap().unwrap()).collect();
        let mut dec = VideoDecoder::new().unwrap();
        // A P frame without its IDR yields an error or no picture, never a wrong one.
        if let Ok(Some(frame)) = dec.decode(&packets[2].data, 0) {
            panic!("decoded a P frame without its reference: {}x{}", frame.width, frame.height);
        }
        assert!(matches!(dec.decode(b"\x00\x00\x00\x01garbage", 0), Err(_) | Ok(None)));
    }

    #[test]
    fn default_bitrate_scales_with_pixels() {
        assert_eq!(default_bitrate_kbps(1280, 720, 30), 1935);
        assert_eq!(default_bitrate_kbps(64, 64, 1), 150);
        assert_eq!(default_bitrate_kbps(7680, 4320, 60), 8000);
    }
}
