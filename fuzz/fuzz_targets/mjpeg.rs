//! Camera-like MJPEG files and camera buffers: the stream is split into pictures as
//! `--source FILE.mjpeg` reads it, and each picture is decoded to I420 by libjpeg-turbo,
//! as a camera's MJPEG buffers are.
#![no_main]

use chat::media::camera_buffer::{PixelLayout, buffer_to_i420};
use chat::media::mjpeg::MAX_SIDE;
use chat::media::mjpeg_stream::{MAX_PICTURE_BYTES, picture_length};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some(length)) = picture_length(rest) {
        assert!((4..=rest.len()).contains(&length) && length <= MAX_PICTURE_BYTES + 2);
        if let Ok(frame) = buffer_to_i420(PixelLayout::Mjpeg, &rest[..length], (0, 0), 0) {
            assert!(frame.width <= MAX_SIDE && frame.height <= MAX_SIDE);
            assert_eq!(frame.y.len(), frame.width * frame.height);
        }
        rest = &rest[length..];
    }
    // The same bytes as one camera buffer, whatever they hold.
    let _ = buffer_to_i420(PixelLayout::Mjpeg, data, (0, 0), 0);
});
