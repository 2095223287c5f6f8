//! The delay trend, as GCC's trendline estimator computes it, over frames: each frame is
//! one group (its packets share a send time). The one-way delay's changes from frame to
//! frame are accumulated, smoothed, and a least-squares line is fitted to the last 12
//! smoothed delays against arrival time: its slope says whether a queue is growing.
//! The clocks need not agree, since only differences of (arrival - sent) count.
//!
//! GCC fits 20 groups smoothed by 0.9, but its groups are packet bursts a few ms apart;
//! frames come 33 to 67 ms apart (further under congestion), and with GCC's counts the
//! trend lagged a growing queue by a second in simulation. Fewer frames and lighter
//! smoothing keep the time constants near GCC's: a 0.4 s window and 130 ms of smoothing
//! lag at 30 fps.

use std::collections::VecDeque;

/// Frames in the fitted window: 0.4 s at 30 fps, 0.8 s at 15.
const WINDOW_FRAMES: usize = 12;
/// Weight of the past in the smoothed delay (a lag of 4 frames).
const SMOOTHING: f64 = 0.8;
/// An arrival gap or a jump in delay this large means the path was down or a clock
/// stepped: the old line says nothing about the new queue, so the fit starts over.
const RESTART_US: i128 = 1_000_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct DelayTrend {
    /// Arrival time and one-way delay (arrival - sent, mixed clocks) of the previous frame.
    previous: Option<(u64, i128)>,
    /// Arrival of the first frame of this fit, the origin of its time axis.
    origin_us: u64,
    /// Sum of delay changes since the origin, ms.
    accumulated_ms: f64,
    /// `accumulated_ms` smoothed, ms.
    smoothed_ms: f64,
    /// (arrival ms since the origin, smoothed delay ms) of the last frames.
    window: VecDeque<(f64, f64)>,
}

impl DelayTrend {
    /// Adds a frame that arrived complete at `arrival_us` (local clock) and was sent at
    /// `sent_us` (the sender's clock). Frames must come in sending order.
    pub fn on_frame(&mut self, arrival_us: u64, sent_us: u64) {
        let delay = i128::from(arrival_us) - i128::from(sent_us);
        if let Some((previous_arrival, previous_delay)) = self.previous {
            let gap = i128::from(arrival_us) - i128::from(previous_arrival);
            if !(0..=RESTART_US).contains(&gap) || (delay - previous_delay).abs() > RESTART_US {
                *self = Self::default();
            }
        }
        match self.previous {
            None => self.origin_us = arrival_us,
            Some((_, previous_delay)) => {
                self.accumulated_ms += (delay - previous_delay) as f64 / 1000.0;
                self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
            }
        }
        self.previous = Some((arrival_us, delay));
        let since_origin_ms = arrival_us.saturating_sub(self.origin_us) as f64 / 1000.0;
        self.window.push_back((since_origin_ms, self.smoothed_ms));
        if self.window.len() > WINDOW_FRAMES {
            self.window.pop_front();
        }
    }

    /// The fitted slope: ms of delay gained per ms of arrival time (0.1 = the queue grows
    /// by 100 ms a second). Zero until the window is full, or when all frames arrived at once.
    pub fn slope(&self) -> f64 {
        if self.window.len() < WINDOW_FRAMES {
            return 0.0;
        }
        let count = self.window.len() as f64;
        let mean_x = self.window.iter().map(|(x, _)| x).sum::<f64>() / count;
        let mean_y = self.window.iter().map(|(_, y)| y).sum::<f64>() / count;
        let (covariance, variance) = self.window.iter().fold((0.0, 0.0), |(cov, var), (x, y)| {
            (cov + (x - mean_x) * (y - mean_y), var + (x - mean_x) * (x - mean_x))
        });
        if variance > 0.0 { covariance / variance } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_US: u64 = 33_333;

    /// Frames sent every `FRAME_US` with a sender clock 5 s ahead, each arriving
    /// `delay_of(i)` after it was sent.
    fn feed(trend: &mut DelayTrend, frames: std::ops::Range<u64>, delay_of: impl Fn(u64) -> u64) {
        for i in frames {
            let sent = 5_000_000 + i * FRAME_US;
            trend.on_frame(i * FRAME_US + delay_of(i), sent);
        }
    }

    #[test]
    fn a_constant_delay_has_no_trend() {
        let mut trend = DelayTrend::default();
        feed(&mut trend, 0..60, |_| 20_000);
        assert!(trend.slope().abs() < 1e-9);
    }

    #[test]
    fn nothing_is_said_before_the_window_fills() {
        let mut trend = DelayTrend::default();
        feed(&mut trend, 0..(WINDOW_FRAMES as u64 - 1), |i| i * 10_000);
        assert_eq!(trend.slope(), 0.0);
    }

    #[test]
    fn a_growing_queue_gives_a_positive_slope_and_a_draining_one_negative() {
        // Each frame waits 3.3 ms longer than the one before, so frames arrive 36.7 ms
        // apart: the delay grows by 1/11 of the arrival time.
        let mut trend = DelayTrend::default();
        feed(&mut trend, 0..100, |i| 20_000 + i * FRAME_US / 10);
        let growing = trend.slope();
        assert!((growing - 1.0 / 11.0).abs() < 0.002, "slope {growing}");
        feed(&mut trend, 100..200, |i| 20_000 + 100 * FRAME_US / 10 - (i - 100) * FRAME_US / 20);
        let draining = trend.slope();
        assert!(draining < -0.04, "slope {draining}");
    }

    #[test]
    fn a_long_gap_starts_over() {
        let mut trend = DelayTrend::default();
        feed(&mut trend, 0..40, |i| 20_000 + i * 5_000);
        assert!(trend.slope() > 0.05);
        // Two seconds of silence, then a steady path: the old ramp is forgotten.
        feed(&mut trend, 100..140, |_| 20_000);
        assert!(trend.slope().abs() < 1e-9);
    }

    #[test]
    fn hostile_times_do_not_panic() {
        let mut trend = DelayTrend::default();
        for (arrival, sent) in [(0, u64::MAX), (u64::MAX, 0), (5, 5), (u64::MAX, u64::MAX), (1, 0)] {
            trend.on_frame(arrival, sent);
            assert!(trend.slope().is_finite());
        }
    }
}
