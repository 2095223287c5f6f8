//! `VideoFrame`: one picture in I420 (planar 4:2:0) with its capture time.

use std::sync::Arc;

/// One picture in I420: a full-size luma plane and two quarter-size chroma planes,
/// tightly packed (stride = width), with the time it was captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: usize,
    pub height: usize,
    /// Luma, `width * height` bytes.
    pub y: Vec<u8>,
    /// Blue-difference chroma, `chroma_width() * chroma_height()` bytes.
    pub u: Vec<u8>,
    /// Red-difference chroma, same size as `u`.
    pub v: Vec<u8>,
    /// Capture time, microseconds on the capturing peer's wall clock.
    pub capture_us: u64,
}

/// A frame shared between stages without copying.
pub type SharedFrame = Arc<VideoFrame>;

impl VideoFrame {
    /// A black frame. `width` and `height` must be even (4:2:0 subsampling).
    pub fn black(width: usize, height: usize) -> Self {
        debug_assert!(width.is_multiple_of(2) && height.is_multiple_of(2), "I420 needs even sizes");
        let chroma = (width / 2) * (height / 2);
        Self { width, height, y: vec![16; width * height], u: vec![128; chroma], v: vec![128; chroma], capture_us: 0 }
    }

    pub fn chroma_width(&self) -> usize {
        self.width / 2
    }

    pub fn chroma_height(&self) -> usize {
        self.height / 2
    }

    /// Copies a picture given as three planes with arbitrary strides.
    pub fn from_planes(width: usize, height: usize, planes: [(&[u8], usize); 3], capture_us: u64) -> Self {
        let copy = |(data, stride): (&[u8], usize), w: usize, h: usize| {
            let mut out = Vec::with_capacity(w * h);
            for row in 0..h {
                out.extend_from_slice(&data[row * stride..row * stride + w]);
            }
            out
        };
        let (cw, ch) = (width / 2, height / 2);
        Self {
            width,
            height,
            y: copy(planes[0], width, height),
            u: copy(planes[1], cw, ch),
            v: copy(planes[2], cw, ch),
            capture_us,
        }
    }
}

impl openh264::formats::YUVSource for VideoFrame {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.chroma_width(), self.chroma_width())
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}
