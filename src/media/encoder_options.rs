//! Changes to a running openh264 encoder (bitrate, frame rate, IDR interval) through its
//! `SetOption` call, which the `openh264` crate exposes only as raw, unsafe API: the one
//! module of the crate allowed `unsafe`.
//!
//! openh264 takes these options only once it is initialised (by its first picture); before
//! that it answers `cmInitExpected`, which comes back here as `Refused`.
#![allow(unsafe_code)]

use std::ffi::c_void;

use openh264::encoder::Encoder;
use openh264_sys2::{
    ENCODER_OPTION, ENCODER_OPTION_BITRATE, ENCODER_OPTION_FRAME_RATE, ENCODER_OPTION_IDR_INTERVAL,
    ENCODER_OPTION_MAX_BITRATE, LAYER_NUM, SBitrateInfo, SPATIAL_LAYER_0, SPATIAL_LAYER_ALL, cmResultSuccess,
};

/// openh264 did not take an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncoderOptionError {
    /// `SetOption` returned an error code: the encoder has seen no picture yet, or the value
    /// is outside what it accepts (a maximum bitrate below the target, a rate of zero).
    #[error("openh264 refused {option} = {value} (code {code})")]
    Refused { option: &'static str, value: i64, code: i32 },
}

/// Sets the target bitrate (bits per second) of the encoder's only layer, and its maximum to
/// the same value as `EncoderConfig::bitrate` does, so the new target holds both ways: a
/// higher target under the old maximum would be refused, a lower one would leave rate control
/// a maximum it never reaches. openh264 checks that the maximum is not below the target after
/// each call, so a rise moves the maximum first and a fall the target first. No keyframe.
pub fn set_bitrate(encoder: &mut Encoder, from_bps: u32, to_bps: u32) -> Result<(), EncoderOptionError> {
    let target = |encoder: &mut Encoder| {
        set_layer_bitrate(encoder, (ENCODER_OPTION_BITRATE, "ENCODER_OPTION_BITRATE"), SPATIAL_LAYER_ALL, to_bps)
    };
    // The maximum is per layer: SPATIAL_LAYER_ALL would only set a total openh264 reads at start.
    let maximum = |encoder: &mut Encoder| {
        set_layer_bitrate(encoder, (ENCODER_OPTION_MAX_BITRATE, "ENCODER_OPTION_MAX_BITRATE"), SPATIAL_LAYER_0, to_bps)
    };
    if to_bps > from_bps {
        maximum(encoder)?;
        target(encoder)
    } else {
        target(encoder)?;
        maximum(encoder)
    }
}

/// Sets the frame rate rate control budgets for (bits per picture = bitrate / rate); openh264
/// clips it to 1..=60. It does not drop pictures itself: the caller feeds it this rate.
pub fn set_frame_rate(encoder: &mut Encoder, fps: f32) -> Result<(), EncoderOptionError> {
    let mut value = fps;
    // SAFETY: the encoder is alive (`&mut Encoder`), and ENCODER_OPTION_FRAME_RATE reads one
    // `float` through the pointer during the call and keeps nothing (welsEncoderExt.cpp,
    // SetOption). `value` is an f32 (C float) on this stack frame for the whole call. The
    // `openh264` crate's `Encoder` keeps its own copy of the rate only to re-initialise at a
    // new picture size, which `VideoEncoder` never lets it do (it builds a new encoder).
    let code = unsafe { encoder.raw_api().set_option(ENCODER_OPTION_FRAME_RATE, (&raw mut value).cast::<c_void>()) };
    check(code, "ENCODER_OPTION_FRAME_RATE", fps as i64)
}

/// Sets the number of pictures between IDR pictures when nobody asks for one (0: never).
pub fn set_idr_interval(encoder: &mut Encoder, pictures: u32) -> Result<(), EncoderOptionError> {
    let mut value = i32::try_from(pictures).unwrap_or(i32::MAX);
    // SAFETY: as in `set_frame_rate`: ENCODER_OPTION_IDR_INTERVAL reads one `int32_t` during
    // the call; `value` is an i32 that outlives it.
    let code = unsafe { encoder.raw_api().set_option(ENCODER_OPTION_IDR_INTERVAL, (&raw mut value).cast::<c_void>()) };
    check(code, "ENCODER_OPTION_IDR_INTERVAL", i64::from(pictures))
}

fn set_layer_bitrate(
    encoder: &mut Encoder,
    (option, name): (ENCODER_OPTION, &'static str),
    layer: LAYER_NUM,
    bps: u32,
) -> Result<(), EncoderOptionError> {
    let mut info = SBitrateInfo { iLayer: layer, iBitrate: i32::try_from(bps).unwrap_or(i32::MAX) };
    // SAFETY: the encoder is alive (`&mut Encoder`); ENCODER_OPTION_BITRATE and
    // ENCODER_OPTION_MAX_BITRATE read one `SBitrateInfo` (the bindgen struct, same layout as
    // C's) during the call and keep nothing; `info` outlives the call. The layer is
    // SPATIAL_LAYER_ALL or SPATIAL_LAYER_0, which exists: the crate configures one spatial
    // layer. Bitrates are not among what the `openh264` crate's `Encoder` relies on (it
    // reads its own copy only to re-initialise at a new size, which `VideoEncoder` never
    // lets it do).
    let code = unsafe { encoder.raw_api().set_option(option, (&raw mut info).cast::<c_void>()) };
    check(code, name, i64::from(bps))
}

fn check(code: i32, option: &'static str, value: i64) -> Result<(), EncoderOptionError> {
    if code == cmResultSuccess { Ok(()) } else { Err(EncoderOptionError::Refused { option, value, code }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openh264::OpenH264API;
    use openh264::encoder::{BitRate, EncoderConfig};

    use crate::media::pattern::pattern_frame;

    fn encoder() -> Encoder {
        let config = EncoderConfig::new().bitrate(BitRate::from_bps(500_000));
        Encoder::with_api_config(OpenH264API::from_source(), config).unwrap()
    }

    #[test]
    fn options_are_refused_before_the_first_picture_and_taken_after() {
        let mut enc = encoder();
        assert!(matches!(set_bitrate(&mut enc, 500_000, 300_000), Err(EncoderOptionError::Refused { .. })));
        enc.encode(&pattern_frame(0, 320, 240, 0)).unwrap();
        assert_eq!(set_bitrate(&mut enc, 500_000, 300_000), Ok(()));
        // A target above the maximum is refused: that is why a rise moves the maximum first.
        let target = (ENCODER_OPTION_BITRATE, "ENCODER_OPTION_BITRATE");
        assert!(set_layer_bitrate(&mut enc, target, SPATIAL_LAYER_ALL, 2_000_000).is_err());
        assert_eq!(set_bitrate(&mut enc, 300_000, 2_000_000), Ok(()));
        assert_eq!(set_frame_rate(&mut enc, 15.0), Ok(()));
        assert_eq!(set_idr_interval(&mut enc, 150), Ok(()));
        assert!(matches!(set_frame_rate(&mut enc, 0.0), Err(EncoderOptionError::Refused { .. })));
    }
}
