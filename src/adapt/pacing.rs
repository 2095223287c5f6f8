//! The pacing budget: never queue more than the path carries in ~100 ms. When the bytes
//! waiting to be sent exceed it, the next picture is not encoded at all (skipped at the
//! encoder's input, so no picture goes missing for the decoder and no keyframe is needed):
//! the queue drains instead of growing, whatever the estimate's error.

/// The most queue worth building: 100 ms of the estimate.
pub const BUDGET_US: u64 = 100_000;

/// Whether the next picture should be skipped, with `queued_bytes` handed to the transport
/// and not yet sent and the path carrying `estimate_kbps`.
pub fn skip_picture(queued_bytes: u64, estimate_kbps: u32) -> bool {
    let budget_bytes = u64::from(estimate_kbps) * BUDGET_US / 8_000;
    queued_bytes > budget_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_beyond_100_ms_of_the_estimate() {
        // 1 Mbit/s carries 12 500 bytes in 100 ms.
        assert!(!skip_picture(0, 1_000));
        assert!(!skip_picture(12_500, 1_000));
        assert!(skip_picture(12_501, 1_000));
        assert!(skip_picture(1, 0));
        assert!(skip_picture(u64::MAX, u32::MAX));
        assert!(!skip_picture(0, u32::MAX));
    }
}
