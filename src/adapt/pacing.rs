//! The send window: never queue more than the path carries in about 100 ms. quinn holds at
//! most this many bytes of stream data that the peer has not acknowledged, in flight or
//! waiting to be sent; when a picture does not fit, the writer waits, and the encoder skips
//! the next picture before encoding it (so no picture goes missing for the decoder and no
//! keyframe is needed). Whatever the estimate's error, the queue drains instead of growing.

/// Queue worth building beyond a round trip of the empty path: 60 ms of the estimate, so
/// that with the estimate up to half again above the path's rate (as it is for a moment
/// after a drop), the queue stays near 100 ms. 100 ms of budget let it reach 160 ms in the
/// simulated drop (`scenarios`), 40 ms took the estimate down on random loss.
pub const BUDGET_US: u64 = 60_000;
/// Never less than a few packets, or a small picture could not be sent at all.
pub const MIN_WINDOW_BYTES: u64 = 8 << 10;

/// A P picture that cannot be handed to quinn for this long waits behind data the path
/// is not delivering (at a sharp drop, what was in flight at the old rate, lost in the
/// bottleneck's full queue and sent again slowly): the group is given up, which frees the
/// window, and a keyframe at the new rate starts afresh.
pub const STALL_US: u64 = 500_000;
/// ... at most this often: a keyframe costs several pictures' worth, and at the lowest
/// rates openh264 skips pictures to pay for it (every 2 s kept a 100 kbit/s call at 2 fps).
pub const STALL_RESTART_EVERY_US: u64 = 5_000_000;

/// The send window, bytes, for a path estimated to carry `estimate_kbps` with a round trip
/// of `min_rtt_us` when empty.
pub fn send_window_bytes(estimate_kbps: u32, min_rtt_us: u64) -> u64 {
    let window = u128::from(estimate_kbps) * u128::from(min_rtt_us.saturating_add(BUDGET_US)) / 8_000;
    u64::try_from(window).unwrap_or(u64::MAX).max(MIN_WINDOW_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_and_60_ms_of_the_estimate() {
        // 1 Mbit/s carries 7 500 bytes in 60 ms, 5 000 more in a 40 ms round trip.
        assert_eq!(send_window_bytes(1_000, 40_000), 12_500);
        assert_eq!(send_window_bytes(3_000, 0), 22_500);
        assert_eq!(send_window_bytes(100, 20_000), MIN_WINDOW_BYTES);
        assert_eq!(send_window_bytes(0, 0), MIN_WINDOW_BYTES);
        assert_eq!(send_window_bytes(u32::MAX, u64::MAX), u64::MAX);
    }
}
