//! Measuring sound: level in dBFS and the dominant frequency. Tests use them to check
//! what came out of the far end's speaker.

/// RMS level in dB relative to full scale (-inf for silence is reported as -200).
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return -200.0;
    }
    let power = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64;
    if power <= 1e-20 { -200.0 } else { 10.0 * power.log10() }
}

/// Power of one frequency in the samples (the Goertzel algorithm), normalised so a
/// full-scale sine at that frequency gives about 0.25. It is averaged over blocks of
/// 100 ms: a frame concealed, dropped or repeated on the way shifts the phase of all that
/// follows, and one sum over the whole would then cancel half of the tone against the
/// other half (a 660 Hz tone with one frame too many once measured 7 dB low).
fn power_at(samples: &[f32], hz: f64, rate: u32) -> f64 {
    let block = (rate as usize / 10).clamp(1, samples.len().max(1));
    let blocks = samples.chunks_exact(block);
    let count = blocks.len().max(1) as f64;
    blocks.map(|block| goertzel(block, hz, rate)).sum::<f64>() / count
}

fn goertzel(samples: &[f32], hz: f64, rate: u32) -> f64 {
    let w = std::f64::consts::TAU * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = samples.len().max(1) as f64;
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

/// The RMS level (dBFS) of the sine at `hz` in the samples, whatever else they hold.
pub fn tone_dbfs(samples: &[f32], hz: f64, rate: u32) -> f64 {
    // A sine of amplitude a gives power a^2 / 4 here, and an RMS of a / sqrt(2).
    let power = 2.0 * power_at(samples, hz, rate);
    if power <= 1e-20 { -200.0 } else { 10.0 * power.log10() }
}

/// The strongest frequency between 50 Hz and 4 kHz, to within 1 Hz.
pub fn dominant_frequency(samples: &[f32], rate: u32) -> f64 {
    let strongest = |from: f64, to: f64, step: f64| {
        let mut best = (from, f64::MIN);
        let mut hz = from;
        while hz <= to {
            let p = power_at(samples, hz, rate);
            if p > best.1 {
                best = (hz, p);
            }
            hz += step;
        }
        best.0
    };
    let coarse = strongest(50.0, 4000.0, 10.0);
    strongest(coarse - 10.0, coarse + 10.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_and_full_scale() {
        assert_eq!(rms_dbfs(&[0.0; 100]), -200.0);
        assert_eq!(rms_dbfs(&[]), -200.0);
        assert!((rms_dbfs(&[1.0; 100])).abs() < 1e-9);
        let sine: Vec<f32> = (0..4800).map(|n| (n as f32 * 1000.0 * std::f32::consts::TAU / 48000.0).sin()).collect();
        assert!((dominant_frequency(&sine, 48_000) - 1000.0).abs() <= 1.0);
        // Half a full-scale sine is -9 dBFS RMS, and noise at another frequency beside it
        // does not count.
        let mixed: Vec<f32> = (0..48_000)
            .map(|n| {
                let t = n as f32 / 48_000.0;
                0.5 * (t * 660.0 * std::f32::consts::TAU).sin() + 0.3 * (t * 150.0 * std::f32::consts::TAU).sin()
            })
            .collect();
        assert!((tone_dbfs(&mixed, 660.0, 48_000) + 9.03).abs() < 0.1, "{}", tone_dbfs(&mixed, 660.0, 48_000));
    }

    #[test]
    fn a_frame_too_many_on_the_way_does_not_hide_a_tone() {
        // 2 s of a 660 Hz tone with one 10 ms frame played twice in the middle: everything
        // after it is 2.5 rad out of phase with what came before.
        let mut tone: Vec<f32> =
            (0..96_000).map(|n| 0.5 * (n as f32 / 48_000.0 * 660.0 * std::f32::consts::TAU).sin()).collect();
        let repeated = tone[48_000..48_480].to_vec();
        tone.splice(48_000..48_000, repeated);
        assert!((tone_dbfs(&tone, 660.0, 48_000) + 9.03).abs() < 0.3, "{}", tone_dbfs(&tone, 660.0, 48_000));
        assert!((dominant_frequency(&tone, 48_000) - 660.0).abs() <= 1.0, "{}", dominant_frequency(&tone, 48_000));
    }
}
