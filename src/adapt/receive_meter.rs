//! The receiver side of rate adaptation: fed every video frame as it arrives, it tells the
//! sender every ~100 ms how fast video arrives, whether its delay is growing, how much
//! queue it waits behind and how many frames went missing (`ReceiverReport`).
//!
//! The rate is the larger of two: video frames read whole, and everything the transport
//! received less sound. On QUIC a lost packet holds back every frame behind it on its
//! stream until it is sent again, a round trip or more; frames then arrive in bursts after
//! gaps, and at a rate drop (when the bottleneck's queue overflows) the frame rate alone
//! read near zero and cut the estimate to its floor. The transport's bytes keep flowing.

use std::collections::VecDeque;

use super::counter_rate::CounterRate;
use super::report::ReceiverReport;
use super::trendline::DelayTrend;

/// The receive rate is measured over this much recent arrival time: long enough for a few
/// frames at 15 fps, short enough to show a rate drop within a report or two.
pub const RATE_WINDOW_US: u64 = 250_000;
/// At most this many frames are remembered for the rate, whatever a peer sends.
const RATE_WINDOW_MAX_FRAMES: usize = 1024;
/// The path's own delay is the smallest seen over the last 10 s (in 1 s slots), as a
/// route change or a clock drift moves it slowly; a queue never lasts that long.
const BASE_DELAY_SLOTS: usize = 10;
const BASE_DELAY_SLOT_US: u64 = 1_000_000;

/// One complete video frame, as the receiver read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameArrival {
    /// When its last byte was read, on the receiver's clock.
    pub arrival_us: u64,
    /// When the sender handed it to the transport, on the sender's clock (the frame
    /// header's `sent_us`).
    pub sent_us: u64,
    /// Its size on the wire (header and payload).
    pub bytes: usize,
    /// Its sequence number: the sender numbers only the frames it sends, so a gap is a frame lost.
    pub seq: u64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ReceiveMeter {
    trend: DelayTrend,
    /// (arrival, bytes) of the frames inside the rate window.
    recent: VecDeque<(u64, usize)>,
    /// (slot number, smallest one-way delay in it) of the last `BASE_DELAY_SLOTS` slots.
    base_delay: VecDeque<(u64, i128)>,
    /// Smallest one-way delay among this interval's frames.
    interval_min_delay: Option<i128>,
    interval_frames: u64,
    /// The sequence number expected next.
    next_seq: Option<u64>,
    /// Frames missing from the sequence since the start.
    gaps: u64,
    /// Lost frames already reported.
    lost_reported: u64,
    last_report_us: Option<u64>,
    /// The transport's count of bytes received.
    transport: CounterRate,
}

impl ReceiveMeter {
    /// A meter that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one frame that arrived complete. Frames older than one already seen (a
    /// stale group) count for the rate but not for delay or loss.
    pub fn on_frame(&mut self, frame: FrameArrival) {
        if self.recent.len() == RATE_WINDOW_MAX_FRAMES {
            self.recent.pop_front();
        }
        self.recent.push_back((frame.arrival_us, frame.bytes));
        self.interval_frames += 1;
        let expected = self.next_seq.unwrap_or(frame.seq);
        if frame.seq < expected {
            return;
        }
        self.gaps = self.gaps.saturating_add(frame.seq - expected);
        self.next_seq = Some(frame.seq.saturating_add(1));

        self.trend.on_frame(frame.arrival_us, frame.sent_us);
        let delay = i128::from(frame.arrival_us) - i128::from(frame.sent_us);
        self.interval_min_delay = Some(self.interval_min_delay.map_or(delay, |min| min.min(delay)));
        let slot = frame.arrival_us / BASE_DELAY_SLOT_US;
        match self.base_delay.back_mut() {
            Some((last, min)) if *last == slot => *min = (*min).min(delay),
            _ => self.base_delay.push_back((slot, delay)),
        }
        while self.base_delay.front().is_some_and(|(first, _)| first + BASE_DELAY_SLOTS as u64 <= slot) {
            self.base_delay.pop_front();
        }
    }

    /// Takes the transport's count of bytes received since the connection started (UDP
    /// payloads: media, retransmissions, acknowledgements), at `now_us`.
    pub fn on_transport_bytes(&mut self, now_us: u64, total_bytes: u64) {
        self.transport.on_sample(now_us, total_bytes);
    }

    /// What the transport received over about the rate window, less sound, kbit/s.
    fn transport_kbps(&self) -> u64 {
        let kbps = self.transport.kbps(RATE_WINDOW_US).unwrap_or(0.0) as u64;
        kbps.saturating_sub(u64::from(super::AUDIO_KBPS))
    }

    /// The report for the time since the previous one (the first covers 100 ms).
    /// Call it every `REPORT_INTERVAL_US`, frames or not: a report with no frames tells
    /// the sender the path is silent.
    pub fn report(&mut self, now_us: u64) -> ReceiverReport {
        let interval_us = self.last_report_us.map_or(super::REPORT_INTERVAL_US, |last| now_us.saturating_sub(last));
        self.last_report_us = Some(now_us);

        let frames_lost = self.gaps.saturating_sub(self.lost_reported);
        self.lost_reported = self.lost_reported.max(self.gaps);

        let base = self.base_delay.iter().map(|(_, min)| *min).min();
        let queuing_ms = match (self.interval_min_delay.take(), base) {
            (Some(min), Some(base)) => u64::try_from((min - base) / 1000).unwrap_or(0),
            _ => 0,
        };
        let report = ReceiverReport {
            receive_kbps: u32::try_from(self.receive_kbps(now_us).max(self.transport_kbps())).unwrap_or(u32::MAX),
            delay_trend_us_per_s: (self.trend.slope() * 1e6).round().clamp(i32::MIN.into(), i32::MAX.into()) as i32,
            queuing_delay_ms: clamp_u16(queuing_ms),
            interval_ms: clamp_u16(interval_us / 1000).max(1),
            frames_received: clamp_u16(self.interval_frames),
            frames_lost: clamp_u16(frames_lost),
        };
        self.interval_frames = 0;
        report
    }

    /// Video bytes per second over the rate window. When the window's frames span at least
    /// half of it, the span is the divisor (exact when frames come paced by a bottleneck);
    /// otherwise, frames arrived in a burst and the window's length is, so a burst never
    /// reads as a fast link.
    fn receive_kbps(&mut self, now_us: u64) -> u64 {
        while self.recent.front().is_some_and(|(arrival, _)| arrival.saturating_add(RATE_WINDOW_US) <= now_us) {
            self.recent.pop_front();
        }
        let (Some(&(first_at, first_bytes)), Some(&(last_at, _))) = (self.recent.front(), self.recent.back()) else {
            return 0;
        };
        let bytes: u128 = self.recent.iter().map(|(_, bytes)| *bytes as u128).sum();
        let span_us = last_at.saturating_sub(first_at);
        let (bits, over_us) = if span_us >= RATE_WINDOW_US / 2 {
            ((bytes - first_bytes as u128) * 8, span_us)
        } else {
            (bytes * 8, RATE_WINDOW_US)
        };
        u64::try_from(bits * 1000 / u128::from(over_us)).unwrap_or(u64::MAX)
    }
}

/// A count clamped into a 16-bit wire field.
fn clamp_u16(value: u64) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_US: u64 = 33_333;
    /// The sender's clock runs 3 hours behind the receiver's: only differences count.
    const CLOCK_OFFSET_US: u64 = 3 * 3600 * 1_000_000;

    /// A bottleneck with 20 ms of path delay after it.
    #[derive(Default)]
    struct Path {
        free_at_us: u64,
    }

    impl Path {
        /// Sends frames of `bytes` at 30 fps through the bottleneck at `link_kbps`;
        /// returns when the last one arrived.
        fn send(
            &mut self,
            meter: &mut ReceiveMeter,
            frames: std::ops::Range<u64>,
            bytes: usize,
            link_kbps: u64,
        ) -> u64 {
            let mut arrival_us = 0;
            for seq in frames {
                let sent_us = seq * FRAME_US;
                self.free_at_us = self.free_at_us.max(sent_us) + bytes as u64 * 8_000 / link_kbps;
                arrival_us = CLOCK_OFFSET_US + self.free_at_us + 20_000;
                meter.on_frame(FrameArrival { arrival_us, sent_us, bytes, seq });
            }
            arrival_us
        }
    }

    #[test]
    fn a_clean_path_reports_its_rate_with_no_trend_and_no_queue() {
        let mut meter = ReceiveMeter::new();
        // 4 167 bytes a frame at 30 fps: 1 000 kbit/s, on a 5 Mbit/s path.
        let end = Path::default().send(&mut meter, 0..90, 4_167, 5_000);
        let report = meter.report(end);
        assert!((990..=1010).contains(&report.receive_kbps), "{report:?}");
        assert!(report.delay_trend_us_per_s.abs() < 1_000, "{report:?}");
        assert_eq!(report.queuing_delay_ms, 0);
        assert_eq!(report.frames_lost, 0);
        assert_eq!(report.frames_received, 90);
        assert_eq!(report.interval_ms, 100);
    }

    #[test]
    fn a_bottleneck_shows_its_rate_a_rising_trend_and_a_growing_queue() {
        let (mut meter, mut path) = (ReceiveMeter::new(), Path::default());
        let end = path.send(&mut meter, 0..30, 4_167, 5_000);
        meter.report(end);
        // The same 1 000 kbit/s into 500: the queue grows by half a second every second.
        let end = path.send(&mut meter, 30..55, 4_167, 500);
        meter.report(end);
        let end = path.send(&mut meter, 55..60, 4_167, 500);
        let report = meter.report(end);
        assert!((495..=505).contains(&report.receive_kbps), "{report:?}");
        assert!(report.delay_trend_us_per_s > 400_000, "{report:?}");
        assert!(report.queuing_delay_ms > 500, "{report:?}");
    }

    #[test]
    fn gaps_in_the_numbers_are_losses() {
        let mut meter = ReceiveMeter::new();
        let frame = |seq: u64| FrameArrival { arrival_us: seq * FRAME_US, sent_us: seq * FRAME_US, bytes: 100, seq };
        for seq in [0, 1, 4, 5] {
            meter.on_frame(frame(seq));
        }
        let report = meter.report(200_000);
        assert_eq!((report.frames_received, report.frames_lost), (4, 2));
        assert!((report.loss_fraction() - 1.0 / 3.0).abs() < 1e-9);

        // Three more missing (the sender numbers only what it sends); a stale frame from
        // before counts as received but not as a new gap.
        for seq in [9, 3, 10] {
            meter.on_frame(frame(seq));
        }
        let report = meter.report(400_000);
        assert_eq!((report.frames_received, report.frames_lost, report.interval_ms), (3, 3, 200));

        // Nothing missing, nothing lost.
        meter.on_frame(frame(11));
        assert_eq!(meter.report(500_000).frames_lost, 0);
    }

    #[test]
    fn a_silence_reports_nothing_received() {
        let mut meter = ReceiveMeter::new();
        let end = Path::default().send(&mut meter, 0..30, 4_167, 5_000);
        meter.report(end);
        let report = meter.report(end + 300_000);
        assert_eq!((report.receive_kbps, report.frames_received, report.queuing_delay_ms), (0, 0, 0));
        assert_eq!(report.interval_ms, 300);
    }

    #[test]
    fn frames_held_back_behind_a_lost_packet_do_not_read_as_a_slow_link() {
        // 500 kbit/s of media and 40 of sound arrive at the transport, but one frame's
        // packet was lost and nothing has been read whole for 300 ms.
        let mut meter = ReceiveMeter::new();
        let end = Path::default().send(&mut meter, 0..3, 2_000, 5_000);
        let mut bytes = 0;
        for tick in 0..=3 {
            meter.on_transport_bytes(end + tick * 100_000, bytes);
            bytes += 540 * 100 / 8;
        }
        let report = meter.report(end + 300_000);
        assert_eq!(report.frames_received, 3);
        assert_eq!(report.receive_kbps, 500);
    }

    #[test]
    fn hostile_frames_do_not_panic() {
        let mut meter = ReceiveMeter::new();
        for (arrival_us, sent_us, bytes, seq) in
            [(0, u64::MAX, usize::MAX, u64::MAX), (u64::MAX, 0, usize::MAX, 0), (5, 5, 0, u64::MAX - 1)]
        {
            meter.on_frame(FrameArrival { arrival_us, sent_us, bytes, seq });
            meter.report(arrival_us);
        }
        meter.report(0);
        meter.report(u64::MAX);
        for (at, bytes) in [(u64::MAX, u64::MAX), (0, 0), (u64::MAX, 0), (0, u64::MAX), (1, u64::MAX)] {
            meter.on_transport_bytes(at, bytes);
            meter.report(at);
        }
    }
}
