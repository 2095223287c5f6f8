//! H.264 through openh264: `VideoEncoder` (real-time camera mode with bitrate control,
//! keyframes on demand, and bitrate, frame rate and picture size that change during a call)
//! and `VideoDecoder`, both frame in, frame out.

use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

use super::encoder_options::{self, EncoderOptionError};
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
///
/// Bitrate and frame rate change at run time without a keyframe (`set_bitrate`,
/// `set_frame_rate`). A picture of another size starts a new openh264 encoder built with the
/// current settings, so its first picture is an IDR picture announcing the new size and is
/// already budgeted at the current bitrate. (The `openh264` crate would re-initialise in place,
/// but from the bitrate it was created with, and encode that keyframe before anything could
/// be re-applied: the most expensive picture at the wrong rate.)
pub struct VideoEncoder {
    /// Bitrate and frame rate as last set: each new openh264 encoder starts from them.
    settings: EncoderSettings,
    inner: Encoder,
    /// The picture size `inner` took from its first picture; `None` until it has one.
    size: Option<(usize, usize)>,
    /// Capture time of `inner`'s first picture: its rate control runs on times relative to it.
    first_capture_us: Option<u64>,
}

impl VideoEncoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, CodecError> {
        Ok(Self { settings, inner: Self::open(settings)?, size: None, first_capture_us: None })
    }

    /// An openh264 encoder for `settings`, initialised by the first picture it gets.
    fn open(settings: EncoderSettings) -> Result<Encoder, CodecError> {
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(settings.bitrate_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .skip_frames(true)
            .scene_change_detect(false)
            .complexity(Complexity::Low)
            .num_threads(1)
            .intra_frame_period(IntraFramePeriod::from_num_frames(idr_interval(settings)));
        Encoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| CodecError::Encode(e.to_string()))
    }

    /// Makes the next picture an IDR picture.
    pub fn request_keyframe(&mut self) {
        // Before its first picture an encoder starts with an IDR picture anyway.
        if self.size.is_some() {
            self.inner.force_intra_frame();
        }
    }

    /// Sets the target bitrate from the next picture on, without a keyframe. openh264 takes
    /// at least 1 kbit/s.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        let kbps = kbps.max(1);
        let from = self.settings.bitrate_kbps;
        if kbps == from {
            return Ok(());
        }
        self.change(EncoderSettings { bitrate_kbps: kbps, ..self.settings }, |encoder| {
            encoder_options::set_bitrate(encoder, from.saturating_mul(1000), kbps.saturating_mul(1000))
        })
    }

    /// Sets the frame rate rate control plans for (openh264 takes 1 to 60), and the IDR
    /// interval in pictures so it stays `keyframe_interval_secs`. The caller feeds pictures
    /// at this rate (`FramePacer`): openh264 does not drop them itself.
    pub fn set_frame_rate(&mut self, fps: u32) -> Result<(), CodecError> {
        let fps = fps.clamp(1, 60);
        if fps == self.settings.fps {
            return Ok(());
        }
        let settings = EncoderSettings { fps, ..self.settings };
        self.change(settings, |encoder| {
            encoder_options::set_frame_rate(encoder, fps as f32)?;
            encoder_options::set_idr_interval(encoder, idr_interval(settings))
        })
    }

    /// Moves to `settings`: through `apply` on a running encoder, or by building the encoder
    /// anew if it has not started (openh264 takes options only once it has a picture).
    fn change(
        &mut self,
        settings: EncoderSettings,
        apply: impl FnOnce(&mut Encoder) -> Result<(), EncoderOptionError>,
    ) -> Result<(), CodecError> {
        if self.size.is_some() {
            apply(&mut self.inner).map_err(|e| CodecError::Encode(e.to_string()))?;
        } else {
            self.inner = Self::open(settings)?;
        }
        self.settings = settings;
        Ok(())
    }

    /// Encodes one picture. `None` if the encoder produced nothing for it.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Option<EncodedFrame>, CodecError> {
        let size = (frame.width, frame.height);
        if self.size.is_some_and(|current| current != size) {
            self.inner = Self::open(self.settings)?;
            self.first_capture_us = None;
        }
        self.size = Some(size);
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

/// Pictures between IDR pictures when nobody asks for one.
fn idr_interval(settings: EncoderSettings) -> u32 {
    settings.fps.saturating_mul(settings.keyframe_interval_secs)
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
    use crate::media::sps::announced_sizes;

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

    /// Encodes pattern pictures `range` at 30 fps and `w` x `h`; returns the kbit/s they
    /// came to and how many were keyframes.
    fn kbps_and_keyframes(enc: &mut VideoEncoder, range: std::ops::Range<u32>, (w, h): (usize, usize)) -> (f64, usize) {
        let seconds = f64::from(range.end - range.start) / 30.0;
        let (mut bytes, mut keyframes) = (0, 0);
        for i in range {
            if let Some(packet) = enc.encode(&pattern_frame(i, w, h, u64::from(i) * 33_333)).unwrap() {
                bytes += packet.data.len();
                keyframes += usize::from(packet.keyframe);
            }
        }
        (bytes as f64 * 8.0 / 1000.0 / seconds, keyframes)
    }

    #[test]
    fn a_lower_bitrate_takes_hold_within_a_second_without_a_keyframe() {
        let size = (1280, 720);
        let mut enc = encoder(30, 2000);
        kbps_and_keyframes(&mut enc, 0..30, size);
        let (before, _) = kbps_and_keyframes(&mut enc, 30..90, size);
        enc.set_bitrate(300).unwrap();
        let (first_second, keyframes) = kbps_and_keyframes(&mut enc, 90..120, size);
        let (second_second, more_keyframes) = kbps_and_keyframes(&mut enc, 120..150, size);
        enc.set_bitrate(2000).unwrap();
        let (back_up, back_up_keyframes) = kbps_and_keyframes(&mut enc, 150..210, size);
        assert_eq!(keyframes + more_keyframes + back_up_keyframes, 0, "a change forced a keyframe");
        assert!(before > 1700.0, "{before:.0} kbps at 2000");
        assert!(first_second < 360.0 && second_second < 360.0, "{first_second:.0}, {second_second:.0} kbps at 300");
        assert!(back_up > 1500.0, "{back_up:.0} kbps at 2000 again");
    }

    #[test]
    fn a_new_size_starts_with_an_idr_announcing_it_at_the_bitrate_set_at_run_time() {
        let mut enc = encoder(30, 2000);
        let mut dec = VideoDecoder::new().unwrap();
        for i in 0..10 {
            // Rate control may skip a picture to pay for the first keyframe.
            if let Some(packet) = enc.encode(&pattern_frame(i, 1280, 720, u64::from(i) * 33_333)).unwrap() {
                dec.decode(&packet.data, packet.capture_us).unwrap();
            }
        }
        enc.set_bitrate(300).unwrap();
        let packet = enc.encode(&pattern_frame(10, 640, 360, 333_330)).unwrap().expect("the new size's first picture");
        assert!(packet.keyframe);
        assert_eq!(announced_sizes(&packet.data), Ok(vec![(640, 368)]));
        let decoded = dec.decode(&packet.data, packet.capture_us).unwrap().expect("decoded at the new size");
        assert_eq!((decoded.width, decoded.height, read_index(&decoded)), (640, 360, Some(10)));
        // The new encoder runs at 300 kbit/s, not the 2000 it was created with.
        let (kbps, keyframes) = kbps_and_keyframes(&mut enc, 11..71, (640, 360));
        assert_eq!(keyframes, 0);
        assert!((200.0..360.0).contains(&kbps), "{kbps:.0} kbps at 300");
    }

    #[test]
    fn default_bitrate_scales_with_pixels() {
        assert_eq!(default_bitrate_kbps(1280, 720, 30), 1935);
        assert_eq!(default_bitrate_kbps(64, 64, 1), 150);
        assert_eq!(default_bitrate_kbps(7680, 4320, 60), 8000);
    }
}
