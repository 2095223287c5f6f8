//! `Histogram`: fixed-size latency histogram (0.25 ms buckets up to 2 s) for percentiles
//! without keeping samples, so a long call uses constant memory.

const BUCKET_MS: f64 = 0.25;
const BUCKETS: usize = 8000;

#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u32>,
    /// All samples, including those at or above the last bucket.
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0 }
    }
}

impl Histogram {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&mut self, ms: f64) {
        let bucket = (ms.max(0.0) / BUCKET_MS) as usize;
        if let Some(count) = self.counts.get_mut(bucket) {
            *count = count.saturating_add(1);
        }
        self.total += 1;
    }

    /// The value below which a fraction `q` (0..=1) of samples fall, at bucket resolution
    /// (the bucket's midpoint); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return Some((i as f64 + 0.5) * BUCKET_MS);
            }
        }
        Some(BUCKETS as f64 * BUCKET_MS)
    }

    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=100 {
            h.record(f64::from(ms));
        }
        assert!((h.quantile(0.5).unwrap() - 50.125).abs() < 1e-9);
        assert!((h.quantile(0.95).unwrap() - 95.125).abs() < 1e-9);
        h.record(1e9);
        assert_eq!(h.quantile(1.0), Some(2000.0));
        h.clear();
        assert_eq!(h.quantile(0.5), None);
    }
}
