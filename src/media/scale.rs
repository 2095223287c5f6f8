//! Resizing I420 pictures with fast_image_resize's SIMD convolution, plane by plane. For
//! the encoder (the adaptation ladder, odd-sized files) `scale_i420`: shrinking averages the
//! area each output sample covers (a box filter: no aliasing, and a flat area stays exactly
//! flat), growing interpolates. For the window `scale_i420_for_window`: the same when
//! shrinking (the inset), nearest sample when growing, a third of the cost at full screen.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::frame::VideoFrame;

/// `frame` resized to `width` x `height`, both rounded down to even numbers (4:2:0) and at
/// least 2. Keeps the capture time. A picture already of that size is returned as a copy.
pub fn scale_i420(frame: &VideoFrame, width: usize, height: usize) -> VideoFrame {
    scale(frame, width, height, FilterType::Bilinear)
}

/// As `scale_i420`, but growing repeats the nearest sample.
pub fn scale_i420_for_window(frame: &VideoFrame, width: usize, height: usize) -> VideoFrame {
    scale(frame, width, height, FilterType::Box)
}

/// Scales with a box filter when shrinking, `growing` when not.
fn scale(frame: &VideoFrame, width: usize, height: usize, growing: FilterType) -> VideoFrame {
    let (width, height) = ((width & !1).max(2), (height & !1).max(2));
    if (width, height) == (frame.width, frame.height) {
        return frame.clone();
    }
    let mut out = VideoFrame::black(width, height);
    out.capture_us = frame.capture_us;
    if frame.width < 2 || frame.height < 2 {
        return out;
    }
    let shrinking = width * height < frame.width * frame.height;
    let algorithm = match (shrinking, growing) {
        (true, _) => ResizeAlg::Convolution(FilterType::Box),
        (false, FilterType::Box) => ResizeAlg::Nearest,
        (false, filter) => ResizeAlg::Convolution(filter),
    };
    let options = ResizeOptions::new().resize_alg(algorithm);
    scale_plane(&frame.y, (frame.width, frame.height), &mut out.y, (width, height), &options);
    let (source_chroma, out_chroma) = ((frame.chroma_width(), frame.chroma_height()), (width / 2, height / 2));
    scale_plane(&frame.u, source_chroma, &mut out.u, out_chroma, &options);
    scale_plane(&frame.v, source_chroma, &mut out.v, out_chroma, &options);
    out
}

thread_local! {
    /// A resizer keeps its work buffers between pictures.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// Scales one tightly packed plane.
fn scale_plane(
    source: &[u8],
    (sw, sh): (usize, usize),
    out: &mut [u8],
    (ow, oh): (usize, usize),
    options: &ResizeOptions,
) {
    let size = |n: usize| u32::try_from(n).expect("picture sides fit in u32");
    let source = ImageRef::new(size(sw), size(sh), source, PixelType::U8).expect("a plane of its own size");
    let mut target = Image::from_slice_u8(size(ow), size(oh), out, PixelType::U8).expect("a plane of its own size");
    RESIZER.with_borrow_mut(|resizer| resizer.resize(&source, &mut target, options)).expect("same pixel types");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(width: usize, height: usize, (y, u, v): (u8, u8, u8)) -> VideoFrame {
        let mut frame = VideoFrame::black(width, height);
        frame.y.fill(y);
        frame.u.fill(u);
        frame.v.fill(v);
        frame
    }

    #[test]
    fn a_flat_colour_stays_flat_at_any_size() {
        let colour = (77, 99, 201);
        let source = flat(1280, 720, colour);
        for (w, h) in [(640, 360), (426, 240), (1000, 562), (1920, 1080), (2, 2)] {
            let scaled = scale_i420(&source, w, h);
            assert_eq!(scaled, VideoFrame { capture_us: source.capture_us, ..flat(w, h, colour) }, "{w}x{h}");
        }
    }

    #[test]
    fn halving_averages_each_two_by_two_block() {
        let mut source = VideoFrame::black(8, 4);
        source.capture_us = 1234;
        // Luma columns alternate 10 and 30; the right half of the U plane is bluer.
        for (i, p) in source.y.iter_mut().enumerate() {
            *p = if i % 2 == 0 { 10 } else { 30 };
        }
        for (i, p) in source.u.iter_mut().enumerate() {
            *p = if i % 4 < 2 { 100 } else { 140 };
        }
        let half = scale_i420(&source, 4, 2);
        assert_eq!((half.width, half.height, half.capture_us), (4, 2, 1234));
        assert_eq!(half.y, vec![20; 8]);
        assert_eq!(half.u, vec![100, 140]);
        assert_eq!(half.v, vec![128, 128]);
    }

    #[test]
    fn sizes_are_made_even_and_edges_stay_in_place() {
        // Left half black, right half white: the edge stays in the middle at a third of the size.
        let mut source = VideoFrame::black(1280, 720);
        for row in source.y.chunks_exact_mut(1280) {
            row[640..].fill(235);
        }
        let third = scale_i420(&source, 427, 241);
        assert_eq!((third.width, third.height), (426, 240));
        assert_eq!((third.y.len(), third.u.len()), (426 * 240, 213 * 120));
        let row = &third.y[100 * 426..101 * 426];
        assert!(row[..212].iter().all(|&p| p == 16) && row[214..].iter().all(|&p| p == 235), "{:?}", &row[208..218]);
        assert_eq!(scale_i420(&source, 1280, 720), source);
    }
}
