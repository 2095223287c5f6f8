//! The receiver's report on the video it gets, and its fixed 16-byte wire layout.
//!
//! Layout, all big-endian: `receive_kbps: u32`, `delay_trend_us_per_s: i32`,
//! `queuing_delay_ms: u16`, `interval_ms: u16`, `frames_received: u16`, `frames_lost: u16`.
//! It travels as one datagram, behind the type byte `'R'` (`net::wire::Datagram`).

/// Size of an encoded report.
pub const REPORT_BYTES: usize = 16;

/// What the receiver saw since its previous report (see `ReceiveMeter::report`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverReport {
    /// Video received over the last quarter second, in kbit/s. Audio is not counted: the
    /// sender knows what it sends and adds it.
    pub receive_kbps: u32,
    /// Slope of the one-way delay over arrival time (GCC's trendline over the last 12
    /// frames), in microseconds of delay per second of arrival time: 100 000 means the
    /// queue grows by 100 ms every second, that is video comes in 10 % faster than the path
    /// carries it. Zero until 12 frames have arrived since the start or since a gap of 1 s.
    pub delay_trend_us_per_s: i32,
    /// The standing queue: the smallest one-way delay of the interval's frames minus the
    /// smallest seen over the last 10 s, in ms (one late keyframe does not count). Zero
    /// when no frame arrived in the interval.
    pub queuing_delay_ms: u16,
    /// How long the report covers, in ms (never zero).
    pub interval_ms: u16,
    /// Frames that arrived in the interval.
    pub frames_received: u16,
    /// Frames found missing in the interval, the ones the sender said it skipped excepted.
    pub frames_lost: u16,
}

/// A report that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The message is not exactly `REPORT_BYTES` long.
    #[error("receiver report of {found} bytes, expected {REPORT_BYTES}")]
    BadLength {
        /// Bytes received.
        found: usize,
    },
    /// The report says it covers no time, so its rates mean nothing.
    #[error("receiver report covers an interval of 0 ms")]
    EmptyInterval,
}

impl ReceiverReport {
    /// Lost frames over frames expected in the interval, 0 to 1 (0 when none were expected).
    pub fn loss_fraction(&self) -> f64 {
        let expected = u32::from(self.frames_received) + u32::from(self.frames_lost);
        if expected == 0 { 0.0 } else { f64::from(self.frames_lost) / f64::from(expected) }
    }

    /// The report in its wire layout.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(REPORT_BYTES);
        bytes.extend_from_slice(&self.receive_kbps.to_be_bytes());
        bytes.extend_from_slice(&self.delay_trend_us_per_s.to_be_bytes());
        bytes.extend_from_slice(&self.queuing_delay_ms.to_be_bytes());
        bytes.extend_from_slice(&self.interval_ms.to_be_bytes());
        bytes.extend_from_slice(&self.frames_received.to_be_bytes());
        bytes.extend_from_slice(&self.frames_lost.to_be_bytes());
        bytes
    }

    /// Reads a report from the peer: exactly `REPORT_BYTES`, a non-zero interval.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReportError> {
        let bytes: &[u8; REPORT_BYTES] = bytes.try_into().map_err(|_| ReportError::BadLength { found: bytes.len() })?;
        let u16_at = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let four_at = |at: usize| [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let report = Self {
            receive_kbps: u32::from_be_bytes(four_at(0)),
            delay_trend_us_per_s: i32::from_be_bytes(four_at(4)),
            queuing_delay_ms: u16_at(8),
            interval_ms: u16_at(10),
            frames_received: u16_at(12),
            frames_lost: u16_at(14),
        };
        if report.interval_ms == 0 {
            return Err(ReportError::EmptyInterval);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReceiverReport {
        ReceiverReport {
            receive_kbps: 1_234_567,
            delay_trend_us_per_s: -98_765,
            queuing_delay_ms: 321,
            interval_ms: 100,
            frames_received: 3,
            frames_lost: 1,
        }
    }

    #[test]
    fn round_trips_with_a_fixed_size() {
        let bytes = sample().encode();
        assert_eq!(bytes.len(), REPORT_BYTES);
        assert_eq!(ReceiverReport::decode(&bytes), Ok(sample()));
        let extremes = ReceiverReport {
            receive_kbps: u32::MAX,
            delay_trend_us_per_s: i32::MIN,
            queuing_delay_ms: u16::MAX,
            interval_ms: 1,
            frames_received: u16::MAX,
            frames_lost: u16::MAX,
        };
        assert_eq!(ReceiverReport::decode(&extremes.encode()), Ok(extremes));
    }

    #[test]
    fn the_layout_is_big_endian_in_field_order() {
        let bytes = sample().encode();
        assert_eq!(&bytes[0..4], &1_234_567u32.to_be_bytes());
        assert_eq!(&bytes[4..8], &(-98_765i32).to_be_bytes());
        assert_eq!(&bytes[8..16], &[1, 65, 0, 100, 0, 3, 0, 1]);
    }

    #[test]
    fn loss_fraction_counts_lost_over_expected() {
        assert_eq!(sample().loss_fraction(), 0.25);
        assert_eq!(ReceiverReport { interval_ms: 100, ..Default::default() }.loss_fraction(), 0.0);
    }

    #[test]
    fn wrong_lengths_and_empty_intervals_are_refused() {
        let bytes = sample().encode();
        for len in 0..REPORT_BYTES {
            assert_eq!(ReceiverReport::decode(&bytes[..len]), Err(ReportError::BadLength { found: len }));
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(ReceiverReport::decode(&long), Err(ReportError::BadLength { found: REPORT_BYTES + 1 }));
        let empty = ReceiverReport { interval_ms: 0, ..sample() }.encode();
        assert_eq!(ReceiverReport::decode(&empty), Err(ReportError::EmptyInterval));
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // A small xorshift: random lengths around the real one, random contents.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..10_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            match ReceiverReport::decode(&bytes) {
                Ok(report) => {
                    assert_eq!(len, REPORT_BYTES);
                    assert_ne!(report.interval_ms, 0);
                    assert!((0.0..=1.0).contains(&report.loss_fraction()));
                    assert_eq!(report.encode(), bytes);
                }
                Err(ReportError::BadLength { found }) => assert_eq!(found, len),
                Err(ReportError::EmptyInterval) => assert_eq!(len, REPORT_BYTES),
            }
        }
        let huge = vec![0xff; 1 << 20];
        assert!(ReceiverReport::decode(&huge).is_err());
    }
}
