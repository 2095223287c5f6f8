//! `scale_i420`: resizes an I420 picture by area averaging. Each output sample is the mean of
//! the source area it covers, samples cut by its edges weighted by the part covered, so a
//! shrunk picture keeps every source sample's contribution (no aliasing from skipped
//! samples), and a flat area stays exactly flat. Growing a picture repeats samples, blending
//! two where an output sample straddles them. Plain integer code: a SIMD scaler can replace it.

use super::frame::VideoFrame;

/// `frame` resized to `width` x `height`, both rounded down to even numbers (4:2:0) and at
/// least 2. Keeps the capture time. A picture already of that size is returned as a copy.
pub fn scale_i420(frame: &VideoFrame, width: usize, height: usize) -> VideoFrame {
    let (width, height) = ((width & !1).max(2), (height & !1).max(2));
    if (width, height) == (frame.width, frame.height) {
        return frame.clone();
    }
    let mut out = VideoFrame::black(width, height);
    out.capture_us = frame.capture_us;
    if frame.width < 2 || frame.height < 2 {
        return out;
    }
    scale_plane(&frame.y, (frame.width, frame.height), &mut out.y, (width, height));
    let (source_chroma, out_chroma) = ((frame.chroma_width(), frame.chroma_height()), (width / 2, height / 2));
    scale_plane(&frame.u, source_chroma, &mut out.u, out_chroma);
    scale_plane(&frame.v, source_chroma, &mut out.v, out_chroma);
    out
}

/// The source samples one output sample covers along an axis: the first, and the weight of
/// each from there on. The weights of every output sample add up to the source length.
struct Taps {
    first: usize,
    weights: Vec<u32>,
}

/// Taps for shrinking or growing `source` samples to `output` samples. Output sample `i`
/// covers `[i * source, (i + 1) * source)` in units where source sample `j` covers
/// `[j * output, (j + 1) * output)`: both lengths are `source * output`, so all is integer.
fn taps(source: usize, output: usize) -> Vec<Taps> {
    (0..output)
        .map(|i| {
            let (start, end) = (i * source, (i + 1) * source);
            let first = start / output;
            let last = (end - 1) / output;
            let weights = (first..=last).map(|j| (end.min((j + 1) * output) - start.max(j * output)) as u32).collect();
            Taps { first, weights }
        })
        .collect()
}

/// Scales one tightly packed plane: rows first into sums, then columns of those sums.
fn scale_plane(source: &[u8], (sw, sh): (usize, usize), out: &mut [u8], (ow, oh): (usize, usize)) {
    let across = taps(sw, ow);
    // Each row's samples summed with their weights: `sw` times the mean, at most 255 * 3840.
    let mut row_sums = vec![0u32; ow * sh];
    for (row, sums) in source.chunks_exact(sw).zip(row_sums.chunks_exact_mut(ow)) {
        for (sum, tap) in sums.iter_mut().zip(&across) {
            *sum = tap.weights.iter().zip(&row[tap.first..]).map(|(&w, &p)| w * u32::from(p)).sum();
        }
    }
    let total = (sw * sh) as u64;
    let mut column_sums = vec![0u64; ow];
    for (tap, out_row) in taps(sh, oh).iter().zip(out.chunks_exact_mut(ow)) {
        column_sums.fill(0);
        for (&weight, sums) in tap.weights.iter().zip(row_sums[tap.first * ow..].chunks_exact(ow)) {
            for (acc, &sum) in column_sums.iter_mut().zip(sums) {
                *acc += u64::from(weight) * u64::from(sum);
            }
        }
        for (sample, &acc) in out_row.iter_mut().zip(&column_sums) {
            *sample = ((acc + total / 2) / total) as u8;
        }
    }
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
