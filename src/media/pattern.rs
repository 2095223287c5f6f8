//! The test pattern: moving, textured pictures that are a pure function of the frame
//! index, with the index stamped in a band that survives H.264 compression, so a
//! receiver can regenerate the original for PSNR and count skipped frames.

use super::frame::VideoFrame;

/// Bits of frame index carried by the stamp (it wraps after 2^24 frames, 155 hours at 30 fps).
const INDEX_BITS: u32 = 24;
/// Bits of check value after the index, so a picture that is not the pattern is not misread.
const CHECK_BITS: u32 = 8;
const STAMP_CELLS: usize = (INDEX_BITS + CHECK_BITS) as usize;
/// Height of the stamp band: one macroblock row, so it never shares a block with the scene.
const STAMP_ROWS: usize = 16;
/// Smallest picture the stamp fits in legibly (4-pixel cells).
pub const MIN_WIDTH: usize = STAMP_CELLS * 4;
pub const MIN_HEIGHT: usize = STAMP_ROWS * 4;

const BLACK: u8 = 16;
const WHITE: u8 = 235;

/// A 256-entry sine table scaled to 0..=255, the texture's only transcendental.
fn sine(i: usize) -> i32 {
    const TABLE: [u8; 64] = [
        128, 131, 134, 137, 140, 143, 146, 149, 152, 155, 158, 162, 165, 167, 170, 173, 176, 179, 182, 185, 188, 190,
        193, 196, 198, 201, 203, 206, 208, 211, 213, 215, 218, 220, 222, 224, 226, 228, 230, 232, 234, 235, 237, 238,
        240, 241, 243, 244, 245, 246, 248, 249, 250, 250, 251, 252, 253, 253, 254, 254, 254, 255, 255, 255,
    ];
    let i = i & 255;
    let quarter = i & 63;
    let v = match i >> 6 {
        0 => i32::from(TABLE[quarter]),
        1 => i32::from(TABLE[63 - quarter]),
        2 => 256 - i32::from(TABLE[quarter]),
        _ => 256 - i32::from(TABLE[63 - quarter]),
    };
    v.min(255)
}

fn check_value(index: u32) -> u32 {
    (index.wrapping_mul(0x9E37_79B1) >> 24) ^ 0x5A
}

/// The scene repeats every 256 pixels both ways: the checker every 64, the texture's sines
/// every 256.
const PERIOD: usize = 256;

/// One period of the scrolling scene (luma), each row written twice, so that any
/// 256-pixel window of a row is one slice; and the blue-difference chroma's row pattern
/// (a period of 128, twice over) for an even and an odd start. Made once: drawing a
/// picture is then copying.
struct Scene {
    luma: Vec<[u8; 2 * PERIOD]>,
    chroma_u: [[u8; PERIOD]; 2],
}

fn scene() -> &'static Scene {
    static SCENE: std::sync::OnceLock<Scene> = std::sync::OnceLock::new();
    SCENE.get_or_init(|| Scene {
        luma: (0..PERIOD).map(|v| std::array::from_fn(|u| scene_luma(u, v))).collect(),
        chroma_u: std::array::from_fn(|odd| std::array::from_fn(|j| (96 + sine(2 * j + odd) / 4) as u8)),
    })
}

/// The scene's luma at (u, v), before scrolling.
fn scene_luma(u: usize, v: usize) -> u8 {
    let checker = (((u >> 5) + (v >> 5)) & 1) as i32 * 60;
    (40 + checker + sine(u * 3) / 4 + sine(v * 5) / 4) as u8
}

/// Fills `row` with `pattern` (one period, written twice) read from `start` on, wrapping.
fn fill_wrapping(row: &mut [u8], pattern: &[u8], start: usize) {
    let period = pattern.len() / 2;
    for chunk in row.chunks_mut(period) {
        chunk.copy_from_slice(&pattern[start..start + chunk.len()]);
    }
}

/// The pattern picture for frame `index`. `width` and `height` must be even and at
/// least `MIN_WIDTH` x `MIN_HEIGHT`.
pub fn pattern_frame(index: u32, width: usize, height: usize, capture_us: u64) -> VideoFrame {
    let mut frame = VideoFrame::black(width, height);
    frame.capture_us = capture_us;
    let t = index as usize;
    let scene = scene();
    // The scene scrolls diagonally 2 px a frame; a square bounces across it.
    let (dx, dy) = (2 * t, 2 * t);
    for (y, row) in frame.y.chunks_exact_mut(width).enumerate() {
        fill_wrapping(row, &scene.luma[(y + dy) % PERIOD], dx % PERIOD);
    }
    draw_square(&mut frame, t);
    let cw = width / 2;
    for (cy, (u_row, v_row)) in frame.u.chunks_exact_mut(cw).zip(frame.v.chunks_exact_mut(cw)).enumerate() {
        let v = cy + dy / 2;
        // Blue difference: sine(2 (cx + dx/2) + v), which repeats every 128 along the row.
        let start = 2 * (dx / 2) + v;
        fill_wrapping(u_row, &scene.chroma_u[start & 1], (start >> 1) % (PERIOD / 2));
        v_row.fill((96 + sine(v * 3 + 64) / 4) as u8);
    }
    stamp_index(&mut frame, index);
    frame
}

/// The square that bounces across the scene, a cross on it.
fn draw_square(frame: &mut VideoFrame, t: usize) {
    let (width, height) = (frame.width, frame.height);
    let side = (height / 5).max(8) & !1;
    let bounce = |span: usize, speed: usize| {
        let span = span.max(1);
        let p = (t * speed) % (2 * span);
        if p < span { p } else { 2 * span - p }
    };
    let sq_x = bounce(width.saturating_sub(side), 6) & !1;
    let sq_y = STAMP_ROWS + (bounce(height.saturating_sub(side + STAMP_ROWS), 4) & !1);
    for y in sq_y..(sq_y + side).min(height) {
        let inside = y - sq_y;
        let row = &mut frame.y[y * width..(y + 1) * width];
        for (x, out) in row[sq_x..sq_x + side].iter_mut().enumerate() {
            let cross = x.abs_diff(side / 2) < side / 10 || inside.abs_diff(side / 2) < side / 10;
            *out = if cross { 30 } else { (200 + (x + inside) % 32) as u8 };
        }
    }
}

fn stamp_index(frame: &mut VideoFrame, index: u32) {
    let word = (index & ((1 << INDEX_BITS) - 1)) | (check_value(index & ((1 << INDEX_BITS) - 1)) << INDEX_BITS);
    let cell = frame.width / STAMP_CELLS;
    for y in 0..STAMP_ROWS.min(frame.height) {
        let row = &mut frame.y[y * frame.width..(y + 1) * frame.width];
        row.fill(BLACK);
        for bit in 0..STAMP_CELLS {
            if word >> bit & 1 == 1 {
                row[bit * cell..(bit + 1) * cell].fill(WHITE);
            }
        }
    }
    let cw = frame.chroma_width();
    for cy in 0..STAMP_ROWS / 2 {
        frame.u[cy * cw..(cy + 1) * cw].fill(128);
        frame.v[cy * cw..(cy + 1) * cw].fill(128);
    }
}

/// Reads the frame index stamped by `pattern_frame`, or `None` if the picture does not
/// carry a valid stamp (another source, or too damaged to trust).
pub fn read_index(frame: &VideoFrame) -> Option<u32> {
    if frame.width < MIN_WIDTH || frame.height < MIN_HEIGHT {
        return None;
    }
    let cell = frame.width / STAMP_CELLS;
    let mut word = 0u32;
    for bit in 0..STAMP_CELLS {
        // Average the cell's middle, away from edges that compression smears.
        let (x0, x1) = (bit * cell + cell / 4, bit * cell + cell - cell / 4);
        let mut sum = 0u32;
        let mut count = 0u32;
        for y in 4..STAMP_ROWS - 4 {
            for &p in &frame.y[y * frame.width + x0..y * frame.width + x1] {
                sum += u32::from(p);
                count += 1;
            }
        }
        let mean = sum / count.max(1);
        if mean > u32::from(BLACK + WHITE) / 2 {
            word |= 1 << bit;
        } else if mean.abs_diff(u32::from(BLACK)) > 40 {
            return None;
        }
    }
    let index = word & ((1 << INDEX_BITS) - 1);
    (word >> INDEX_BITS == check_value(index)).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern as it was first written, pixel by pixel: what the copied one must equal.
    fn drawn_pixel_by_pixel(index: u32, width: usize, height: usize, capture_us: u64) -> VideoFrame {
        let mut frame = VideoFrame::black(width, height);
        frame.capture_us = capture_us;
        let t = index as usize;
        // The scene scrolls diagonally 2 px a frame. (The square on it was moved into
        // draw_square unchanged; this checks the scene copied out of one period.)
        let (dx, dy) = (2 * t, 2 * t);
        for y in 0..height {
            let v = y + dy;
            let row = &mut frame.y[y * width..(y + 1) * width];
            let tex_v = sine(v * 5) / 4;
            for (x, out) in row.iter_mut().enumerate() {
                let u = x + dx;
                let checker = (((u >> 5) + (v >> 5)) & 1) as i32 * 60;
                *out = (40 + checker + sine(u * 3) / 4 + tex_v) as u8;
            }
        }
        draw_square(&mut frame, t);
        let (cw, ch) = (width / 2, height / 2);
        for cy in 0..ch {
            let v = cy + dy / 2;
            for cx in 0..cw {
                let u = cx + dx / 2;
                frame.u[cy * cw + cx] = (96 + sine(u * 2 + v) / 4) as u8;
                frame.v[cy * cw + cx] = (96 + sine(v * 3 + 64) / 4) as u8;
            }
        }
        stamp_index(&mut frame, index);
        frame
    }

    #[test]
    fn the_copied_pattern_equals_the_one_drawn_pixel_by_pixel() {
        for (w, h) in [(MIN_WIDTH, MIN_HEIGHT), (320, 240), (642, 362), (1280, 720)] {
            for index in [0, 1, 7, 63, 64, 127, 128, 300, 65_537] {
                let (fast, slow) = (pattern_frame(index, w, h, 5), drawn_pixel_by_pixel(index, w, h, 5));
                assert!(fast == slow, "{w}x{h} #{index}");
            }
        }
    }

    #[test]
    fn pattern_is_a_pure_function_of_the_index() {
        assert_eq!(pattern_frame(17, 320, 240, 0), pattern_frame(17, 320, 240, 0));
        assert_ne!(pattern_frame(17, 320, 240, 0).y, pattern_frame(18, 320, 240, 0).y);
    }

    #[test]
    fn index_reads_back_at_every_size() {
        for (w, h) in [(MIN_WIDTH, MIN_HEIGHT), (640, 480), (1280, 720), (1922, 1080)] {
            for index in [0, 1, 299, 65_535, (1 << 24) - 1] {
                assert_eq!(read_index(&pattern_frame(index, w, h, 0)), Some(index), "{w}x{h} #{index}");
            }
        }
    }

    #[test]
    fn index_survives_noise() {
        let mut frame = pattern_frame(123_456, 640, 480, 0);
        for (i, p) in frame.y.iter_mut().enumerate() {
            *p = p.saturating_add((i * 7919 % 21) as u8).saturating_sub(10);
        }
        assert_eq!(read_index(&frame), Some(123_456));
    }

    #[test]
    fn a_picture_without_a_stamp_is_not_misread() {
        assert_eq!(read_index(&VideoFrame::black(640, 480)), None);
        let mut grey = VideoFrame::black(640, 480);
        grey.y.fill(128);
        assert_eq!(read_index(&grey), None);
        assert_eq!(read_index(&VideoFrame::black(64, 32)), None);
        // A stamp with one flipped bit fails its check.
        let mut frame = pattern_frame(42, 640, 480, 0);
        let cell = 640 / STAMP_CELLS;
        for y in 0..STAMP_ROWS {
            let bit0 = &mut frame.y[y * 640..y * 640 + cell];
            let flipped = if bit0[0] == WHITE { BLACK } else { WHITE };
            bit0.fill(flipped);
        }
        assert_eq!(read_index(&frame), None);
    }
}
