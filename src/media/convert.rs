//! Colour conversion: camera formats (RGB, YUYV) to I420, and I420 to the window's 0RGB
//! pixels with scaling. BT.601 limited range, integer arithmetic.

use super::frame::VideoFrame;

/// Converts packed 8-bit RGB (`width * height * 3` bytes) to I420. Odd sizes are cropped
/// to even ones. Returns `None` if `rgb` is too short for the size.
pub fn rgb_to_i420(rgb: &[u8], width: usize, height: usize, capture_us: u64) -> Option<VideoFrame> {
    packed_to_i420(rgb, width, height, capture_us, [0, 1, 2])
}

/// Converts packed 8-bit BGR (OpenCV's order) to I420, as `rgb_to_i420`.
pub fn bgr_to_i420(bgr: &[u8], width: usize, height: usize, capture_us: u64) -> Option<VideoFrame> {
    packed_to_i420(bgr, width, height, capture_us, [2, 1, 0])
}

fn packed_to_i420(
    src: &[u8],
    width: usize,
    height: usize,
    capture_us: u64,
    [ri, gi, bi]: [usize; 3],
) -> Option<VideoFrame> {
    let mut frame = output_frame(src, 3, width, height, capture_us)?;
    let (w, h, cw) = (frame.width, frame.height, frame.chroma_width());
    for row in 0..h {
        let line = &src[row * width * 3..];
        let yrow = &mut frame.y[row * w..(row + 1) * w];
        for (x, out) in yrow.iter_mut().enumerate() {
            let p = &line[x * 3..x * 3 + 3];
            *out = luma(p[ri], p[gi], p[bi]);
        }
    }
    for cy in 0..h / 2 {
        let top = &src[(cy * 2) * width * 3..];
        let bottom = &src[(cy * 2 + 1) * width * 3..];
        for cx in 0..cw {
            let mut sum = [0u32; 3];
            for line in [top, bottom] {
                for dx in 0..2 {
                    let p = &line[(cx * 2 + dx) * 3..];
                    sum[0] += u32::from(p[ri]);
                    sum[1] += u32::from(p[gi]);
                    sum[2] += u32::from(p[bi]);
                }
            }
            let (r, g, b) = ((sum[0] / 4) as u8, (sum[1] / 4) as u8, (sum[2] / 4) as u8);
            frame.u[cy * cw + cx] = chroma_u(r, g, b);
            frame.v[cy * cw + cx] = chroma_v(r, g, b);
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
    if w == 0 || h == 0 {
        return None;
    }
    let mut frame = VideoFrame::black(w, h);
    frame.capture_us = capture_us;
    Some(frame)
}

/// Converts packed YUYV 4:2:2 (`width * height * 2` bytes) to I420 by averaging chroma rows.
pub fn yuyv_to_i420(src: &[u8], width: usize, height: usize, capture_us: u64) -> Option<VideoFrame> {
    let mut frame = output_frame(src, 2, width, height, capture_us)?;
    let (w, h, cw) = (frame.width, frame.height, frame.chroma_width());
    for row in 0..h {
        let line = &src[row * width * 2..];
        for x in 0..w {
            frame.y[row * w + x] = line[x * 2];
        }
    }
    for cy in 0..h / 2 {
        let top = &src[(cy * 2) * width * 2..];
        let bottom = &src[(cy * 2 + 1) * width * 2..];
        for cx in 0..cw {
            let avg = |i: usize| (u16::from(top[i]) + u16::from(bottom[i])).div_ceil(2) as u8;
            frame.u[cy * cw + cx] = avg(cx * 4 + 1);
            frame.v[cy * cw + cx] = avg(cx * 4 + 3);
        }
    }
    Some(frame)
}

/// Converts I420 to packed BGR (OpenCV's order), `width * height * 3` bytes.
pub fn i420_to_bgr(frame: &VideoFrame) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.width * frame.height * 3);
    for row in 0..frame.height {
        for x in 0..frame.width {
            let px = pixel_0rgb(frame, x, row);
            out.extend_from_slice(&[px as u8, (px >> 8) as u8, (px >> 16) as u8]);
        }
    }
    out
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8
}

fn chroma_u(r: u8, g: u8, b: u8) -> u8 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8
}

fn chroma_v(r: u8, g: u8, b: u8) -> u8 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8
}

/// One I420 sample as a 0RGB pixel.
fn yuv_to_0rgb(y: u8, u: u8, v: u8) -> u32 {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| (x >> 8).clamp(0, 255) as u32;
    let r = clamp(c + 409 * e + 128);
    let g = clamp(c - 100 * d - 208 * e + 128);
    let b = clamp(c + 516 * d + 128);
    (r << 16) | (g << 8) | b
}

fn pixel_0rgb(frame: &VideoFrame, x: usize, y: usize) -> u32 {
    let ci = (y / 2) * frame.chroma_width() + x / 2;
    yuv_to_0rgb(frame.y[y * frame.width + x], frame.u[ci], frame.v[ci])
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

/// Draws `frame` scaled (nearest sample) into `dst` (a `dst_width`-wide 0RGB buffer) at `area`.
pub fn blit_i420(frame: &VideoFrame, dst: &mut [u32], dst_width: usize, area: Rect) {
    if area.width == 0 || area.height == 0 || frame.width == 0 || frame.height == 0 {
        return;
    }
    let xs: Vec<usize> = (0..area.width).map(|x| x * frame.width / area.width).collect();
    for row in 0..area.height {
        let sy = row * frame.height / area.height;
        let start = (area.y + row) * dst_width + area.x;
        let Some(line) = dst.get_mut(start..start + area.width) else {
            return;
        };
        let yrow = &frame.y[sy * frame.width..];
        let crow = (sy / 2) * frame.chroma_width();
        for (out, &sx) in line.iter_mut().zip(&xs) {
            *out = yuv_to_0rgb(yrow[sx], frame.u[crow + sx / 2], frame.v[crow + sx / 2]);
        }
    }
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
        assert_eq!(dst[0], 0);
        assert_eq!(dst[2 * 8 + 2], 0x00ff_ffff);
        assert_eq!(dst[5 * 8 + 5], 0x00ff_ffff);
        assert_eq!(dst[6 * 8 + 6], 0);
    }
}
