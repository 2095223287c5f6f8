//! A camera's picture buffer, in whatever layout the camera gives, turned into I420. Cameras
//! and the camera-like files (`--source FILE.mjpeg`, `FILE.yuyv`) both take this one path.

use std::fmt;

use super::convert::{bgr_to_i420, grey_to_i420, nv12_to_i420, rgb_to_i420, yuyv_to_i420};
use super::frame::VideoFrame;
use super::mjpeg::{MjpegError, mjpeg_to_i420};

/// How a camera lays out a picture's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelLayout {
    /// Planar luma, then interleaved U and V at half size: a copy to I420.
    Nv12,
    /// Luma only: a copy, with neutral chroma.
    Grey,
    /// Packed 4:2:2, Y0 U Y1 V: split into planes and chroma rows averaged.
    Yuyv,
    /// One JPEG picture each: decoded straight to its YUV planes.
    Mjpeg,
    /// Packed 8-bit RGB or BGR: a full colour conversion.
    Rgb,
    Bgr,
}

impl PixelLayout {
    /// Cheapest to convert first (`cargo bench --bench frame_path -- "yuyv|mjpeg|rgb_to"`,
    /// 720p: NV12 and grey are copies; YUYV 0.34 ms; RGB 0.17 ms, but it is three bytes a
    /// pixel over USB; MJPEG 1.2-2.2 ms, as it is decoded).
    pub fn cost_rank(self) -> u8 {
        match self {
            Self::Nv12 | Self::Grey => 0,
            Self::Yuyv => 1,
            Self::Rgb | Self::Bgr => 2,
            Self::Mjpeg => 3,
        }
    }
}

impl fmt::Display for PixelLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nv12 => "NV12",
            Self::Grey => "GREY",
            Self::Yuyv => "YUYV",
            Self::Mjpeg => "MJPEG",
            Self::Rgb => "RGB",
            Self::Bgr => "BGR",
        })
    }
}

/// A camera buffer that does not hold the picture it claims to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BufferError {
    #[error(transparent)]
    Mjpeg(#[from] MjpegError),
    #[error("a {layout} picture of {len} bytes is too short for {width}x{height}")]
    Short { layout: PixelLayout, len: usize, width: usize, height: usize },
}

/// Converts one camera buffer of `width` x `height` pixels (an MJPEG picture says its own
/// size) to I420, stamped `capture_us`. Odd sizes are cropped to even ones.
pub fn buffer_to_i420(
    layout: PixelLayout,
    data: &[u8],
    (width, height): (usize, usize),
    capture_us: u64,
) -> Result<VideoFrame, BufferError> {
    let frame = match layout {
        PixelLayout::Mjpeg => return Ok(mjpeg_to_i420(data, capture_us)?),
        PixelLayout::Nv12 => nv12_to_i420(data, width, height, capture_us),
        PixelLayout::Yuyv => yuyv_to_i420(data, width, height, capture_us),
        PixelLayout::Rgb => rgb_to_i420(data, width, height, capture_us),
        PixelLayout::Bgr => bgr_to_i420(data, width, height, capture_us),
        PixelLayout::Grey => grey_to_i420(data, width, height, capture_us),
    };
    frame.ok_or(BufferError::Short { layout, len: data.len(), width, height })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::mjpeg::tests::{gradient, jpeg};

    #[test]
    fn every_layout_converts_or_names_what_was_short() {
        let (w, h) = (64, 48);
        let rgb = gradient(w, h);
        let bgr: Vec<u8> = rgb.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        let from_rgb = buffer_to_i420(PixelLayout::Rgb, &rgb, (w, h), 1).unwrap();
        assert_eq!(buffer_to_i420(PixelLayout::Bgr, &bgr, (w, h), 1).unwrap(), from_rgb);
        let mjpeg = buffer_to_i420(PixelLayout::Mjpeg, &jpeg(&rgb, w, h, Some((2, 1))), (0, 0), 1).unwrap();
        assert_eq!((mjpeg.width, mjpeg.height), (w, h));
        let grey = buffer_to_i420(PixelLayout::Grey, &from_rgb.y, (w, h), 1).unwrap();
        assert_eq!(grey.y, from_rgb.y);
        for layout in [PixelLayout::Nv12, PixelLayout::Yuyv, PixelLayout::Rgb, PixelLayout::Grey] {
            let err = buffer_to_i420(layout, &[0; 100], (w, h), 0).unwrap_err();
            assert_eq!(err, BufferError::Short { layout, len: 100, width: w, height: h });
            assert!(err.to_string().contains("64x48"), "{err}");
        }
    }
}
