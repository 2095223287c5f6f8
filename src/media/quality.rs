//! Picture quality: PSNR between a received picture and the original it stands for.

/// PSNR cap for identical pictures, so averages stay finite.
pub const PSNR_IDENTICAL_DB: f64 = 100.0;

/// Peak signal-to-noise ratio of `received` against `original` in dB (8-bit samples).
/// `None` when the planes differ in size or are empty.
pub fn psnr(original: &[u8], received: &[u8]) -> Option<f64> {
    if original.len() != received.len() || original.is_empty() {
        return None;
    }
    let squared: u64 = original
        .iter()
        .zip(received)
        .map(|(&a, &b)| {
            let d = u64::from(a.abs_diff(b));
            d * d
        })
        .sum();
    if squared == 0 {
        return Some(PSNR_IDENTICAL_DB);
    }
    let mse = squared as f64 / original.len() as f64;
    Some((10.0 * (255.0 * 255.0 / mse).log10()).min(PSNR_IDENTICAL_DB))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_known_errors() {
        assert_eq!(psnr(&[1, 2, 3], &[1, 2, 3]), Some(PSNR_IDENTICAL_DB));
        // Every sample off by 1: MSE 1, PSNR = 20 log10(255) = 48.13 dB.
        let p = psnr(&[10; 100], &[11; 100]).unwrap();
        assert!((p - 48.130_8).abs() < 1e-3, "{p}");
        // Off by 255 everywhere: 0 dB.
        assert!(psnr(&[0; 4], &[255; 4]).unwrap().abs() < 1e-9);
        assert_eq!(psnr(&[1], &[1, 2]), None);
        assert_eq!(psnr(&[], &[]), None);
    }
}
