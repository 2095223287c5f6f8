//! MJPEG pictures (what a webcam sends at 720p and 1080p) decoded straight to I420:
//! libjpeg-turbo, through the mozjpeg crate, hands out the picture's own YUV planes with no
//! detour through RGB; 4:2:2 chroma (most webcams) is averaged down to 4:2:0, and JPEG's
//! full range scaled to the limited range the encoder and the window use.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mozjpeg::{ColorSpace, CompInfoExt, Decompress};

use super::convert::{average_row_pairs, copy_rows};
use super::frame::VideoFrame;

/// The largest picture decoded, either side: a 4K camera's.
pub const MAX_SIDE: usize = 4096;

/// A JPEG picture that cannot be turned into I420.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MjpegError {
    /// libjpeg-turbo refused it.
    #[error("a broken JPEG picture ({0})")]
    Corrupt(String),
    /// Larger than `MAX_SIDE` or smaller than 2x2.
    #[error("a {width}x{height} JPEG picture: pictures from 2x2 to {MAX_SIDE}x{MAX_SIDE} are taken")]
    Size { width: usize, height: usize },
    /// Not the YCbCr or greyscale, 4:2:0 / 4:2:2 / 4:4:4, that cameras send.
    #[error("a JPEG picture in {0}: only YCbCr (4:2:0, 4:2:2, 4:4:4) and greyscale are taken")]
    Unsupported(String),
}

/// Decodes one JPEG picture to I420 (odd sizes cropped to even), stamped `capture_us`.
pub fn mjpeg_to_i420(jpeg: &[u8], capture_us: u64) -> Result<VideoFrame, MjpegError> {
    // libjpeg's fatal errors come back as unwinding (mozjpeg resumes an unwind, so no panic
    // message is printed); they are caught here and become an error for this picture.
    let mut frame = catch_unwind(AssertUnwindSafe(|| decode(jpeg)))
        .unwrap_or_else(|payload| Err(MjpegError::Corrupt(unwind_message(payload))))?;
    frame.capture_us = capture_us;
    Ok(frame)
}

fn unwind_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("libjpeg gave up");
    text.trim_start_matches("libjpeg fatal error: ").to_string()
}

/// A component's samples per luma sample, across and down: 1 (full) or 2 (half).
fn subsampling(max: (u8, u8), sampling: (u8, u8)) -> Option<(usize, usize)> {
    let ratio = |max: u8, own: u8| (own > 0 && max.is_multiple_of(own)).then(|| usize::from(max / own));
    let (across, down) = (ratio(max.0, sampling.0)?, ratio(max.1, sampling.1)?);
    (across <= 2 && down <= 2).then_some((across, down))
}

fn decode(jpeg: &[u8]) -> Result<VideoFrame, MjpegError> {
    let corrupt = |e: std::io::Error| MjpegError::Corrupt(e.to_string());
    let header = Decompress::new_mem(jpeg).map_err(corrupt)?;
    let (width, height) = header.size();
    if !(2..=MAX_SIDE).contains(&width) || !(2..=MAX_SIDE).contains(&height) {
        return Err(MjpegError::Size { width, height });
    }
    let components: Vec<(u8, u8)> = header.components().iter().map(|c| c.sampling()).collect();
    let colours = header.color_space();
    match (colours, components.len()) {
        (ColorSpace::JCS_YCbCr, 3) | (ColorSpace::JCS_GRAYSCALE, 1) => {}
        _ => return Err(MjpegError::Unsupported(format!("{colours:?} with {} components", components.len()))),
    }
    let max = components.iter().fold((1, 1), |m, &(h, v)| (m.0.max(h), m.1.max(v)));
    let chroma = match components.as_slice() {
        [luma, u, v] if *luma == max && u == v => {
            subsampling(max, *u).ok_or_else(|| MjpegError::Unsupported(format!("sampling {components:?}")))?
        }
        [_] => (1, 1),
        _ => return Err(MjpegError::Unsupported(format!("sampling {components:?}"))),
    };

    let mut started = header.raw().map_err(corrupt)?;
    let strides: Vec<usize> = started.components().iter().map(|c| c.row_stride()).collect();
    let mut planes = vec![Vec::new(); strides.len()];
    {
        let mut targets: Vec<&mut Vec<u8>> = planes.iter_mut().collect();
        started.read_raw_data(&mut targets);
    }
    started.finish().map_err(corrupt)?;

    let mut frame = VideoFrame::black(width & !1, height & !1);
    copy_rows(&planes[0], strides[0], frame.width, &mut frame.y);
    if let [_, u, v] = planes.as_slice() {
        to_quarter_size(u, strides[1], chroma, &mut frame.u, frame.width / 2);
        to_quarter_size(v, strides[2], chroma, &mut frame.v, frame.width / 2);
        frame.u.iter_mut().for_each(|c| *c = limited_chroma(*c));
        frame.v.iter_mut().for_each(|c| *c = limited_chroma(*c));
    }
    frame.y.iter_mut().for_each(|y| *y = limited_luma(*y));
    Ok(frame)
}

/// A chroma plane sampled `(across, down)` to 4:2:0 (`width` samples a row of `out`).
fn to_quarter_size(plane: &[u8], stride: usize, (across, down): (usize, usize), out: &mut [u8], width: usize) {
    if across == 1 {
        // Full width: average each pair of samples across first.
        let halved: Vec<u8> =
            plane.chunks_exact(2).map(|p| ((u16::from(p[0]) + u16::from(p[1]) + 1) >> 1) as u8).collect();
        return to_quarter_size(&halved, stride / 2, (2, down), out, width);
    }
    if down == 1 { average_row_pairs(plane, stride, width, out) } else { copy_rows(plane, stride, width, out) }
}

/// JPEG's full-range luma (0-255) to limited range (16-235): 16 + y * 219 / 255.
fn limited_luma(y: u8) -> u8 {
    (16 + ((u32::from(y) * 220 + 128) >> 8)) as u8
}

/// Full-range chroma (0-255 about 128) to limited range (16-240): 128 + (c - 128) * 224 / 255.
fn limited_chroma(c: u8) -> u8 {
    (128 + ((i32::from(c) - 128) * 225 + 128).div_euclid(256)) as u8
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::convert::rgb_to_i420;
    use crate::media::quality::psnr;

    /// A smooth RGB picture: colour gradients, so JPEG keeps it well.
    pub(crate) fn gradient(width: usize, height: usize) -> Vec<u8> {
        (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| [(x * 255 / width) as u8, (y * 255 / height) as u8, 128]))
            .collect()
    }

    /// `rgb` as a JPEG with chroma `pixel_sizes` ((2, 1) for 4:2:2), or as greyscale.
    pub(crate) fn jpeg(rgb: &[u8], width: usize, height: usize, pixel_sizes: Option<(u8, u8)>) -> Vec<u8> {
        let grey: Vec<u8>;
        let (mut compress, samples) = match pixel_sizes {
            Some(sizes) => {
                let mut compress = mozjpeg::Compress::new(ColorSpace::JCS_RGB);
                compress.set_chroma_sampling_pixel_sizes(sizes, sizes);
                (compress, rgb)
            }
            None => {
                grey = rgb.chunks_exact(3).map(|p| p[1]).collect();
                (mozjpeg::Compress::new(ColorSpace::JCS_GRAYSCALE), &grey[..])
            }
        };
        compress.set_size(width, height);
        compress.set_quality(95.0);
        let mut started = compress.start_compress(Vec::new()).unwrap();
        started.write_scanlines(samples).unwrap();
        started.finish().unwrap()
    }

    #[test]
    fn each_subsampling_decodes_to_the_picture_converted_from_rgb() {
        let (w, h) = (96, 64);
        let rgb = gradient(w, h);
        let expected = rgb_to_i420(&rgb, w, h, 0).unwrap();
        for sizes in [(2, 2), (2, 1), (1, 1)] {
            let frame = mjpeg_to_i420(&jpeg(&rgb, w, h, Some(sizes)), 42).unwrap();
            assert_eq!((frame.width, frame.height, frame.capture_us), (w, h, 42));
            for (name, got, want) in
                [("Y", &frame.y, &expected.y), ("U", &frame.u, &expected.u), ("V", &frame.v, &expected.v)]
            {
                let db = psnr(got, want).unwrap_or(f64::INFINITY);
                assert!(db > 38.0, "{sizes:?} {name}: {db:.1} dB from the RGB conversion");
            }
        }
    }

    #[test]
    fn greyscale_has_neutral_chroma_and_odd_sizes_are_cropped() {
        let rgb: Vec<u8> = [255u8, 255, 255].repeat(33 * 17);
        let frame = mjpeg_to_i420(&jpeg(&rgb, 33, 17, None), 0).unwrap();
        assert_eq!((frame.width, frame.height), (32, 16));
        assert!(frame.y.iter().all(|&y| y.abs_diff(235) <= 1), "white is 235");
        assert!(frame.u.iter().chain(&frame.v).all(|&c| c == 128));
    }

    #[test]
    fn full_range_maps_onto_limited_range_end_to_end() {
        assert_eq!((limited_luma(0), limited_luma(128), limited_luma(255)), (16, 126, 235));
        assert_eq!((limited_chroma(0), limited_chroma(128), limited_chroma(255)), (16, 128, 240));
    }

    #[test]
    fn broken_pictures_are_errors_not_crashes() {
        let good = jpeg(&gradient(64, 32), 64, 32, Some((2, 1)));
        assert!(matches!(mjpeg_to_i420(b"not a jpeg", 0), Err(MjpegError::Corrupt(_))));
        assert!(mjpeg_to_i420(&[], 0).is_err());
        for cut in [2, 20, 100, good.len() / 2] {
            // A picture cut short decodes (libjpeg fills the rest) or is refused, never panics.
            let _ = mjpeg_to_i420(&good[..cut], 0);
        }
        let mut flipped = good.clone();
        for i in (0..flipped.len()).step_by(7) {
            flipped[i] ^= 0x5a;
        }
        let _ = mjpeg_to_i420(&flipped, 0);
    }
}
