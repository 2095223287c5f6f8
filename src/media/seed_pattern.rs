//! The Python streamer's test camera (`../shared/seed/fakecv`): its BGR pictures are
//! `(x + y + channel * 85 + 4 * index) & 255`, with `SEED`, the capture time (f64 seconds)
//! and the index (u64) stamped into their first 21 bytes. A raw-mode receiver that sees
//! one can measure latency and check every pixel arrived intact.

const MAGIC: &[u8; 4] = b"SEED";
const STAMP_BYTES: usize = 21;

/// What the stamp says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedStamp {
    /// Capture time, seconds since the Unix epoch (the sender's clock).
    pub captured_s: f64,
    pub index: u64,
}

/// Reads the stamp from a packed BGR picture, if it carries one.
pub fn read_stamp(bgr: &[u8]) -> Option<SeedStamp> {
    if bgr.len() < STAMP_BYTES || &bgr[..4] != MAGIC {
        return None;
    }
    let captured_s = f64::from_le_bytes(bgr[4..12].try_into().ok()?);
    let index = u64::from_le_bytes(bgr[12..20].try_into().ok()?);
    captured_s.is_finite().then_some(SeedStamp { captured_s, index })
}

/// The picture the seed's camera made for `stamp`, `width` x `height`, packed BGR.
pub fn seed_picture(stamp: SeedStamp, width: usize, height: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height * 3);
    let shift = (stamp.index as usize).wrapping_mul(4);
    for y in 0..height {
        for x in 0..width {
            for c in 0..3 {
                out.push((x + y + c * 85 + shift) as u8);
            }
        }
    }
    if out.len() >= STAMP_BYTES {
        out[..4].copy_from_slice(MAGIC);
        out[4..12].copy_from_slice(&stamp.captured_s.to_le_bytes());
        out[12..20].copy_from_slice(&stamp.index.to_le_bytes());
        out[20] = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_picture_reads_back() {
        let stamp = SeedStamp { captured_s: 1_700_000_000.25, index: 77 };
        let picture = seed_picture(stamp, 16, 8);
        assert_eq!(read_stamp(&picture), Some(stamp));
        // The pattern: pixel (x=5, y=2) channel 1 of index 77.
        assert_eq!(picture[(2 * 16 + 5) * 3 + 1], ((5 + 2 + 85 + 77 * 4) & 255) as u8);
        assert_eq!(read_stamp(&picture[..10]), None);
        assert_eq!(read_stamp(&[0u8; 64]), None);
    }
}
