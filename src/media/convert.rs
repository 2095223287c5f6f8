//! Colour conversion: camera formats (RGB, BGR, YUYV, NV12, grey) to I420, and I420 to BGR
//! (raw mode) and to the window's 0RGB pixels, scaled; through yuvutils-rs's SIMD converters
//! where they serve. BT.601 limited range, which is what the encoder signals in its stream.

use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvError, YuvPlanarImage, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
};

use super::frame::VideoFrame;
use super::scale::scale_i420_for_window;

const RANGE: YuvRange = YuvRange::Limited;
const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt601;

/// Converts packed 8-bit RGB (`width * height * 3` bytes) to I420. Odd sizes are cropped
/// to even ones. Returns `None` if `rgb` is too short for the size.
pub fn rgb_to_i420(rgb: &[u8], width: usize, height: usize, capture_us: u64) -> Option<VideoFrame> {
    packed_to_i420(rgb, width, height, capture_us, yuvutils_rs::rgb_to_yuv420)
}

/// Converts packed 8-bit BGR (OpenCV's order) to I420, as `rgb_to_i420`.
pub fn bgr_to_i420(bgr: &[u8], width: usize, height: usize, capture_us: u64) -> Option<VideoFrame> {
    packed_to_i420(bgr, width, height, capture_us, yuvutils_rs::bgr_to_yuv420)
}

/// One of yuvutils-rs's packed 8-bit, three bytes a pixel, to 4:2:0 converters.
type PackedConverter = fn(
    &mut YuvPlanarImageMut<'_, u8>,
    &[u8],
    u32,
    YuvRange,
    YuvStandardMatrix,
    YuvConversionMode,
) -> Result<(), YuvError>;

fn packed_to_i420(
    src: &[u8],
    width: usize,
    height: usize,
    capture_us: u64,
    convert: PackedConverter,
) -> Option<VideoFrame> {
    let mut frame = output_frame(src, 3, width, height, capture_us)?;
    let stride = u32::try_from(width * 3).ok()?;
    convert(&mut planes_mut(&mut frame), src, stride, RANGE, MATRIX, YuvConversionMode::Balanced).ok()?;
    Some(frame)
}

/// Converts greyscale (`width * height` bytes of luma) to I420 with neutral chroma.
pub fn grey_to_i420(src: &[u8], width: usize, height: usize, capture_us: u64) -> Option<VideoFrame> {
    let mut frame = output_frame(src, 1, width, height, capture_us)?;
    copy_rows(src, width, frame.width, &mut frame.y);
    Some(frame)
}

/// Copies the first `width` samples of each of `out`'s rows from `plane`'s, `stride` apart.
pub(crate) fn copy_rows(plane: &[u8], stride: usize, width: usize, out: &mut [u8]) {
    for (row, line) in out.chunks_exact_mut(width).zip(plane.chunks(stride)) {
        row.copy_from_slice(&line[..width]);
    }
}

/// Converts packed YUYV 4:2:2 (`width * height * 2` bytes) to I420, each pair of chroma
/// rows averaged. A plain loop: yuvutils-rs 0.8.3's YUYV converters leave the last pixels
/// of each row unwritten at some widths (320: the last 10), and its 4:2:0 one keeps only
/// the upper row of each chroma pair.
pub fn yuyv_to_i420(src: &[u8], width: usize, height: usize, capture_us: u64) -> Option<VideoFrame> {
    let mut frame = output_frame(src, 2, width, height, capture_us)?;
    let (w, cw) = (frame.width, frame.chroma_width());
    let chroma = frame.u.chunks_exact_mut(cw).zip(frame.v.chunks_exact_mut(cw));
    for ((luma, (u, v)), rows) in frame.y.chunks_exact_mut(2 * w).zip(chroma).zip(src.chunks_exact(4 * width)) {
        let (top, bottom) = rows.split_at(2 * width);
        let (luma_top, luma_bottom) = luma.split_at_mut(w);
        let pixels = luma_top.chunks_exact_mut(2).zip(luma_bottom.chunks_exact_mut(2));
        for (((yt, yb), (u, v)), (t, b)) in
            pixels.zip(u.iter_mut().zip(v.iter_mut())).zip(top.chunks_exact(4).zip(bottom.chunks_exact(4)))
        {
            (yt[0], yt[1], yb[0], yb[1]) = (t[0], t[2], b[0], b[2]);
            *u = ((u16::from(t[1]) + u16::from(b[1]) + 1) >> 1) as u8;
            *v = ((u16::from(t[3]) + u16::from(b[3]) + 1) >> 1) as u8;
        }
    }
    Some(frame)
}

/// Halves a plane's height, 4:2:2 chroma to 4:2:0: each row of `out` (`width` samples,
/// tightly packed) is the rounded mean of the next two rows of `plane`, `stride` apart.
pub(crate) fn average_row_pairs(plane: &[u8], stride: usize, width: usize, out: &mut [u8]) {
    if width == 0 || stride < width {
        return;
    }
    for (row, pair) in out.chunks_exact_mut(width).zip(plane.chunks_exact(stride * 2)) {
        let (top, bottom) = pair.split_at(stride);
        for ((out, &a), &b) in row.iter_mut().zip(top).zip(bottom) {
            *out = ((u16::from(a) + u16::from(b) + 1) >> 1) as u8;
        }
    }
}

/// Converts NV12 (a luma plane, then one plane of interleaved U and V at half size both
/// ways; `width * height * 3 / 2` bytes) to I420. No crate offers this copy, and it is one.
pub fn nv12_to_i420(src: &[u8], width: usize, height: usize, capture_us: u64) -> Option<VideoFrame> {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let luma = width.checked_mul(height)?;
    if src.len() < luma.checked_add(cw.checked_mul(ch)?.checked_mul(2)?)? {
        return None;
    }
    let mut frame = output_frame(src, 1, width, height, capture_us)?;
    let (w, out_cw) = (frame.width, frame.chroma_width());
    copy_rows(src, width, w, &mut frame.y);
    let chroma = src[luma..].chunks(cw * 2);
    for ((u, v), row) in frame.u.chunks_exact_mut(out_cw).zip(frame.v.chunks_exact_mut(out_cw)).zip(chroma) {
        for ((u, v), pair) in u.iter_mut().zip(v.iter_mut()).zip(row.chunks_exact(2)) {
            (*u, *v) = (pair[0], pair[1]);
        }
    }
    Some(frame)
}

/// The I420 frame a packed picture converts into: odd sizes cropped to even ones. `None`
/// if `src` is too short for `width` x `height` at `bytes_per_pixel`, or the result is empty.
fn output_frame(
    src: &[u8],
    bytes_per_pixel: usize,
    width: usize,
    height: usize,
    capture_us: u64,
) -> Option<VideoFrame> {
    if src.len() < width.checked_mul(height)?.checked_mul(bytes_per_pixel)? {
        return None;
    }
    let (w, h) = (width & !1, height & !1);
    if w == 0 || h == 0 || u32::try_from(width * bytes_per_pixel.max(4)).is_err() || u32::try_from(h).is_err() {
        return None;
    }
    let mut frame = VideoFrame::black(w, h);
    frame.capture_us = capture_us;
    Some(frame)
}

/// `frame`'s planes for yuvutils-rs to write.
fn planes_mut(frame: &mut VideoFrame) -> YuvPlanarImageMut<'_, u8> {
    let (width, height, chroma_stride) = (frame.width as u32, frame.height as u32, frame.chroma_width() as u32);
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut frame.y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(&mut frame.u),
        u_stride: chroma_stride,
        v_plane: BufferStoreMut::Borrowed(&mut frame.v),
        v_stride: chroma_stride,
        width,
        height,
    }
}

/// `frame`'s planes for yuvutils-rs to read, `width` x `height` of them (at most the frame's).
fn planes(frame: &VideoFrame, width: usize, height: usize) -> YuvPlanarImage<'_, u8> {
    let chroma_stride = frame.chroma_width() as u32;
    YuvPlanarImage {
        y_plane: &frame.y,
        y_stride: frame.width as u32,
        u_plane: &frame.u,
        u_stride: chroma_stride,
        v_plane: &frame.v,
        v_stride: chroma_stride,
        width: width as u32,
        height: height as u32,
    }
}

/// Converts I420 to packed BGR (OpenCV's order), `width * height * 3` bytes.
pub fn i420_to_bgr(frame: &VideoFrame) -> Vec<u8> {
    let mut out = vec![0; frame.width * frame.height * 3];
    if !out.is_empty() {
        let stride = (frame.width * 3) as u32;
        yuvutils_rs::yuv420_to_bgr(&planes(frame, frame.width, frame.height), &mut out, stride, RANGE, MATRIX)
            .expect("a VideoFrame's planes fit its size");
    }
    out
}

/// A rectangle inside a pixel buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl Rect {
    /// The largest rectangle with the aspect ratio `src_w:src_h` centred in `outer`.
    pub fn fit(src_w: usize, src_h: usize, outer: Rect) -> Rect {
        if src_w == 0 || src_h == 0 || outer.width == 0 || outer.height == 0 {
            return Rect { width: 0, height: 0, ..outer };
        }
        let (width, height) = if outer.width * src_h <= outer.height * src_w {
            (outer.width, (outer.width * src_h / src_w).max(1))
        } else {
            ((outer.height * src_w / src_h).max(1), outer.height)
        };
        Rect { x: outer.x + (outer.width - width) / 2, y: outer.y + (outer.height - height) / 2, width, height }
    }
}

/// Draws `frame` scaled into `dst` (a `dst_width`-wide 0RGB buffer) at `area`. A picture
/// not already of the area's size is scaled first (`scale_i420_for_window`), to the area rounded up to
/// even sizes. The top byte of each pixel, which the window ignores, is set.
pub fn blit_i420(frame: &VideoFrame, dst: &mut [u32], dst_width: usize, area: Rect) {
    let start = area.y * dst_width + area.x;
    if area.width == 0
        || area.height == 0
        || frame.width < 2
        || frame.height < 2
        || area.x + area.width > dst_width
        || start + (area.height - 1) * dst_width + area.width > dst.len()
    {
        return;
    }
    let even = ((area.width + 1) & !1, (area.height + 1) & !1);
    let scaled;
    let source = if even == (frame.width, frame.height) {
        frame
    } else {
        scaled = scale_i420_for_window(frame, even.0, even.1);
        &scaled
    };
    // yuvutils-rs writes rows in whole strides, so the slice it is given must run a whole
    // stride past the area's last row. Where the buffer ends sooner, the last rows are
    // converted into a small buffer of their own and copied.
    let direct_rows =
        if start + area.height * dst_width <= dst.len() { area.height } else { area.height.saturating_sub(2) & !1 };
    if direct_rows > 0 {
        rows_to_0rgb(source, 0..direct_rows, area.width, &mut dst[start..start + direct_rows * dst_width], dst_width);
    }
    if direct_rows < area.height {
        let mut tail = vec![0u32; (area.height - direct_rows) * area.width];
        rows_to_0rgb(source, direct_rows..area.height, area.width, &mut tail, area.width);
        for (row, line) in (direct_rows..).zip(tail.chunks_exact(area.width)) {
            let at = start + row * dst_width;
            dst[at..at + area.width].copy_from_slice(line);
        }
    }
}

/// Converts `rows` (starting at an even row) of `source`, `width` pixels of each, into
/// `dst`, whose rows are `stride` pixels apart.
fn rows_to_0rgb(source: &VideoFrame, rows: std::ops::Range<usize>, width: usize, dst: &mut [u32], stride: usize) {
    let chroma_stride = source.chroma_width();
    let image = YuvPlanarImage {
        y_plane: &source.y[rows.start * source.width..],
        y_stride: source.width as u32,
        u_plane: &source.u[rows.start / 2 * chroma_stride..],
        u_stride: chroma_stride as u32,
        v_plane: &source.v[rows.start / 2 * chroma_stride..],
        v_stride: chroma_stride as u32,
        width: width as u32,
        height: rows.len() as u32,
    };
    yuvutils_rs::yuv420_to_bgra(&image, bytemuck::cast_slice_mut(dst), (stride * 4) as u32, RANGE, MATRIX)
        .expect("the rows lie inside the buffer and the picture covers them");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_round_trips_through_i420_within_rounding() {
        let (w, h) = (4, 2);
        let colours = [[200u8, 30, 40], [20, 180, 60], [10, 20, 220], [128, 128, 128]];
        let mut rgb = Vec::new();
        for _ in 0..h {
            for x in 0..w {
                // Pairs of equal pixels so chroma subsampling loses nothing.
                rgb.extend_from_slice(&colours[(x / 2) * 2 % 4]);
            }
        }
        let frame = rgb_to_i420(&rgb, w, h, 0).unwrap();
        let bgr = i420_to_bgr(&frame);
        for (i, px) in rgb.chunks(3).enumerate() {
            let back = [bgr[i * 3 + 2], bgr[i * 3 + 1], bgr[i * 3]];
            for c in 0..3 {
                assert!(px[c].abs_diff(back[c]) <= 3, "pixel {i}: {px:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn known_colours_take_their_bt601_limited_range_values_and_come_back() {
        // (R, G, B) -> (Y, U, V) by ITU-R BT.601, studio range.
        let known = [
            ([0u8, 0, 0], [16u8, 128, 128]),
            ([255, 255, 255], [235, 128, 128]),
            ([255, 0, 0], [81, 90, 240]),
            ([0, 255, 0], [145, 54, 34]),
            ([0, 0, 255], [41, 240, 110]),
            ([128, 128, 128], [126, 128, 128]),
        ];
        for (rgb, yuv) in known {
            let picture: Vec<u8> = rgb.iter().copied().cycle().take(16 * 16 * 3).collect();
            let frame = rgb_to_i420(&picture, 16, 16, 0).unwrap();
            let got = [frame.y[0], frame.u[0], frame.v[0]];
            for c in 0..3 {
                assert!(got[c].abs_diff(yuv[c]) <= 1, "{rgb:?} -> {got:?}, expected {yuv:?}");
            }
            let bgr = i420_to_bgr(&frame);
            let mut window = vec![0u32; 16 * 16];
            blit_i420(&frame, &mut window, 16, Rect { x: 0, y: 0, width: 16, height: 16 });
            let shown = [(window[0] >> 16) as u8, (window[0] >> 8) as u8, window[0] as u8];
            for back in [[bgr[2], bgr[1], bgr[0]], shown] {
                for c in 0..3 {
                    assert!(back[c].abs_diff(rgb[c]) <= 2, "{rgb:?} came back as {back:?}");
                }
            }
        }
    }

    #[test]
    fn nv12_splits_its_chroma_pairs() {
        // 2x2 luma, then one U, V pair.
        let frame = nv12_to_i420(&[1, 2, 3, 4, 100, 200], 2, 2, 7).unwrap();
        assert_eq!((frame.y, frame.u, frame.v, frame.capture_us), (vec![1, 2, 3, 4], vec![100], vec![200], 7));
        assert!(nv12_to_i420(&[0; 5], 2, 2, 0).is_none());
    }

    #[test]
    fn yuyv_of_a_whole_picture_comes_back_exactly_at_any_width() {
        for (w, h) in [(320, 240), (322, 66), (1280, 64), (130, 64)] {
            let frame = crate::media::pattern::pattern_frame(3, w, h, 0);
            let mut yuyv = Vec::new();
            for (row, luma) in frame.y.chunks_exact(w).enumerate() {
                let chroma = (row / 2) * (w / 2);
                for (x, pair) in luma.chunks_exact(2).enumerate() {
                    yuyv.extend([pair[0], frame.u[chroma + x], pair[1], frame.v[chroma + x]]);
                }
            }
            assert_eq!(yuyv_to_i420(&yuyv, w, h, 0).unwrap(), frame, "{w}x{h}");
        }
    }

    #[test]
    fn yuyv_keeps_luma_and_averages_chroma() {
        // 2x2 pixels: Y0 U Y1 V per row.
        let src = [10, 100, 20, 200, 30, 110, 40, 210];
        let frame = yuyv_to_i420(&src, 2, 2, 5).unwrap();
        assert_eq!(frame.y, vec![10, 20, 30, 40]);
        assert_eq!(frame.u, vec![105]);
        assert_eq!(frame.v, vec![205]);
        assert_eq!(frame.capture_us, 5);
    }

    #[test]
    fn short_input_is_refused() {
        assert!(rgb_to_i420(&[0; 10], 4, 4, 0).is_none());
        assert!(yuyv_to_i420(&[0; 10], 4, 4, 0).is_none());
        assert!(rgb_to_i420(&[], usize::MAX, 3, 0).is_none());
    }

    #[test]
    fn fit_keeps_aspect_ratio_and_centres() {
        let outer = Rect { x: 0, y: 0, width: 1000, height: 1000 };
        assert_eq!(Rect::fit(1280, 720, outer), Rect { x: 0, y: 219, width: 1000, height: 562 });
        assert_eq!(Rect::fit(720, 1280, outer), Rect { x: 219, y: 0, width: 562, height: 1000 });
    }

    #[test]
    fn blit_scales_into_the_area_only() {
        let mut frame = VideoFrame::black(4, 4);
        frame.y.fill(235);
        let mut dst = vec![0u32; 8 * 8];
        blit_i420(&frame, &mut dst, 8, Rect { x: 2, y: 2, width: 4, height: 4 });
        let rgb = |px: u32| px & 0x00ff_ffff;
        assert_eq!(dst[0], 0);
        assert_eq!(rgb(dst[2 * 8 + 2]), 0x00ff_ffff);
        assert_eq!(rgb(dst[5 * 8 + 5]), 0x00ff_ffff);
        assert_eq!(dst[6 * 8 + 6], 0);
    }

    #[test]
    fn blit_fills_an_area_of_any_size_up_to_the_buffers_last_pixel() {
        let mut frame = VideoFrame::black(64, 36);
        frame.y.fill(235);
        for (w, h) in [(1, 1), (3, 5), (4, 4), (17, 9), (64, 36), (23, 40)] {
            let (dst_w, dst_h) = (w + 5, h + 3);
            let mut dst = vec![0u32; dst_w * dst_h];
            // Bottom right: the area's last pixel is the buffer's.
            let area = Rect { x: dst_w - w, y: dst_h - h, width: w, height: h };
            blit_i420(&frame, &mut dst, dst_w, area);
            for (i, &px) in dst.iter().enumerate() {
                let (x, y) = (i % dst_w, i / dst_w);
                let inside = x >= area.x && y >= area.y;
                assert_eq!(px & 0x00ff_ffff, if inside { 0x00ff_ffff } else { 0 }, "{w}x{h} at ({x}, {y})");
            }
        }
    }
}
