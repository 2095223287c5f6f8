//! CPU overuse, judged as WebRTC's overuse detector does: how much of each frame interval a
//! picture takes from capture to encoded (conversion, waiting for the encoder, scaling,
//! encoding), smoothed over about a second. A machine that cannot keep up shows it there
//! first, whoever takes the CPU: our encoder, our decoder and window, or another program.
//! Above `HIGH_USAGE` for `DOWN_AFTER_US`, the sender steps one rung down the size and
//! frame rate ladder; below `LOW_USAGE` for a while, one rung back up. A step up that
//! overuses again soon doubles the wait before the next one (WebRTC's ramp-up back-off), so
//! a machine at its limit does not see-saw. Time is the pictures' capture time.
//!
//! A step up the link's ladder asks for is the CPU's business too: it goes ahead only
//! below `LOW_USAGE`, as the CPU's own steps up do (WebRTC adapts up only under its low
//! mark as well). The usage does not follow the pixels closely enough to predict a bigger
//! rung's (20 % at 540p and 18 % at 720p in the same loopback call), so the rule is the
//! headroom, not a forecast. Without it, a machine at 80 % at 540p stepped up to 810p
//! because the link had room, could not keep up, and its late pictures read as a queue on
//! the link: the estimate was cut from 4.9 Mbit/s to 0.8 and the call fell to 270p at
//! 15 fps, held there by "link", for what was the CPU's doing.

/// Smoothed usage above this share of the frame interval is overuse (WebRTC: 85 %).
pub const HIGH_USAGE: f64 = 0.85;
/// Below this, a rung up is tried (WebRTC: 42 %; a rung up costs about twice the work).
pub const LOW_USAGE: f64 = 0.40;
/// The smoothing's time constant.
const SMOOTHING_US: f64 = 1_000_000.0;
/// Overuse must last this long before a step down.
const DOWN_AFTER_US: u64 = 1_500_000;
/// Nothing is judged in a call's first seconds: the first pictures are keyframes and the
/// encoder is warming up.
const SETTLE_US: u64 = 2_000_000;
/// Underuse must last this long before the first step up.
const FIRST_UP_AFTER_US: u64 = 5_000_000;
/// The longest wait before a step up, after repeated failed ones.
const MAX_UP_AFTER_US: u64 = 40_000_000;
/// A step up followed by overuse within this long failed.
const FAILED_UP_WITHIN_US: u64 = 10_000_000;

use super::ladder::Rung;

/// See the module documentation.
#[derive(Debug)]
pub struct CpuLoad {
    /// The ladder, largest first (`ladder::rungs`).
    rungs: Vec<Rung>,
    /// How many rungs below the top the CPU allows at most; 0: no limit.
    steps_down: usize,
    /// The lowest rung there is (steps down cannot go past it).
    max_steps: usize,
    usage: Option<f64>,
    started_us: Option<u64>,
    last_us: Option<u64>,
    over_since_us: Option<u64>,
    under_since_us: Option<u64>,
    up_after_us: u64,
    last_up_us: Option<u64>,
}

impl CpuLoad {
    /// A detector stepping along `rungs`, largest first.
    pub fn new(rungs: Vec<Rung>) -> Self {
        Self {
            max_steps: rungs.len().saturating_sub(1),
            rungs,
            steps_down: 0,
            usage: None,
            started_us: None,
            last_us: None,
            over_since_us: None,
            under_since_us: None,
            up_after_us: FIRST_UP_AFTER_US,
            last_up_us: None,
        }
    }

    /// Rungs below the top the CPU allows at most.
    pub fn steps_down(&self) -> usize {
        self.steps_down
    }

    /// The largest picture and frame rate the CPU allows; `None`: no limit.
    pub fn allowed(&self) -> Option<Rung> {
        (self.steps_down > 0).then(|| self.rungs[self.steps_down])
    }

    /// The smoothed share of the frame interval a picture takes, once there is one.
    pub fn usage(&self) -> Option<f64> {
        self.usage
    }

    /// Whether this machine can take `wanted` while it sends `sent`: a rung of no more work
    /// always; a bigger one only with the usage under `LOW_USAGE` (before any picture is
    /// measured, yes).
    pub fn affords(&self, sent: Rung, wanted: Rung) -> bool {
        work(&wanted) <= work(&sent) || self.usage.is_none_or(|usage| usage < LOW_USAGE)
    }

    /// A picture captured at `capture_us` was encoded at `now_us`, sent as `sent` (its
    /// size and the frame rate it is held to). Returns the new number of steps down when it
    /// changes: a step down goes to the first rung below what is sent, which the link may
    /// already hold below the CPU's limit.
    pub fn on_encoded(&mut self, capture_us: u64, now_us: u64, sent: Rung) -> Option<usize> {
        let interval_us = 1e6 / f64::from(sent.fps.max(1));
        let sample = now_us.saturating_sub(capture_us) as f64 / interval_us;
        let since_last = self.last_us.map_or(interval_us, |last| capture_us.saturating_sub(last) as f64);
        self.last_us = Some(capture_us);
        let weight = 1.0 - (-since_last / SMOOTHING_US).exp();
        let usage = self.usage.map_or(sample, |usage| usage + weight * (sample - usage));
        self.usage = Some(usage);
        let started = *self.started_us.get_or_insert(capture_us);
        if capture_us.saturating_sub(started) < SETTLE_US {
            return None;
        }

        if usage > HIGH_USAGE {
            self.under_since_us = None;
            let since = *self.over_since_us.get_or_insert(capture_us);
            if capture_us.saturating_sub(since) >= DOWN_AFTER_US && self.steps_down < self.max_steps {
                if self.last_up_us.is_some_and(|up| capture_us.saturating_sub(up) < FAILED_UP_WITHIN_US) {
                    self.up_after_us = (self.up_after_us * 2).min(MAX_UP_AFTER_US);
                }
                let below = (self.steps_down + 1..=self.max_steps).find(|&i| work(&self.rungs[i]) < work(&sent));
                self.steps_down = below.unwrap_or(self.max_steps);
                self.over_since_us = None;
                // The smaller pictures cost less: judge them afresh.
                self.usage = Some(sample.min(HIGH_USAGE));
                return Some(self.steps_down);
            }
        } else if usage < LOW_USAGE && self.steps_down > 0 {
            self.over_since_us = None;
            let since = *self.under_since_us.get_or_insert(capture_us);
            if capture_us.saturating_sub(since) >= self.up_after_us {
                self.steps_down -= 1;
                self.under_since_us = None;
                self.last_up_us = Some(capture_us);
                return Some(self.steps_down);
            }
        } else {
            self.over_since_us = None;
            self.under_since_us = None;
        }
        None
    }
}

/// Pixels a second: what encoding a rung costs, about.
fn work(rung: &Rung) -> u64 {
    u64::from(rung.width) * u64::from(rung.height) * u64::from(rung.fps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapt::ladder::rungs;

    const FRAME_US: u64 = 33_333;

    fn hd() -> CpuLoad {
        CpuLoad::new(rungs(1280, 720, 30))
    }

    /// Feeds `seconds` of 30 fps pictures that each take `usage` of the interval, sent at
    /// the rung the CPU allows; returns the steps down after each change, with when it came.
    fn run(load: &mut CpuLoad, from_us: u64, seconds: f64, usage: f64) -> Vec<(u64, usize)> {
        let frames = (seconds * 30.0) as u64;
        (0..frames)
            .filter_map(|i| {
                let capture = from_us + i * FRAME_US;
                let busy = (usage * FRAME_US as f64) as u64;
                let sent = load.allowed().unwrap_or(Rung { width: 1280, height: 720, fps: 30 });
                load.on_encoded(capture, capture + busy, sent).map(|steps| (capture, steps))
            })
            .collect()
    }

    #[test]
    fn a_machine_that_keeps_up_is_left_alone() {
        let mut load = hd();
        assert!(run(&mut load, 0, 30.0, 0.6).is_empty());
        assert_eq!((load.steps_down(), load.allowed()), (0, None));
    }

    #[test]
    fn overuse_steps_down_within_two_seconds_and_again_while_it_lasts() {
        let mut load = hd();
        run(&mut load, 0, 3.0, 0.5);
        let changes = run(&mut load, 3_000_000, 5.0, 1.3);
        assert!(!changes.is_empty());
        assert_eq!(changes[0].1, 1);
        assert!(changes[0].0 - 3_000_000 <= 2_500_000, "first step at {} us", changes[0].0);
        assert!(changes.len() >= 2, "kept overusing, stepped only {changes:?}");
        // Never past the lowest rung.
        run(&mut load, 8_000_000, 60.0, 2.0);
        assert_eq!(load.steps_down(), 4);
        assert_eq!(load.allowed(), Some(Rung { width: 320, height: 180, fps: 15 }));
    }

    #[test]
    fn headroom_steps_back_up_and_a_failed_step_up_waits_longer_next_time() {
        let mut load = hd();
        run(&mut load, 0, 6.0, 1.2);
        assert_eq!(load.steps_down(), 2);
        let up = run(&mut load, 6_000_000, 8.0, 0.2);
        assert_eq!(up.first().map(|c| c.1), Some(1), "{up:?}");
        let first_wait = up[0].0 - 6_000_000;
        // The rung up overuses again: back down, and the next step up waits twice as long.
        let down = run(&mut load, 14_000_000, 3.0, 1.2);
        assert_eq!(down.last().map(|c| c.1), Some(2));
        let again = run(&mut load, 17_000_000, 30.0, 0.2);
        let second_wait = again[0].0 - 17_000_000;
        // Each wait is the smoothing's fall below the low mark, then 5 s, then 10 s.
        assert!((5_000_000..7_000_000).contains(&first_wait), "{first_wait}");
        assert!((10_000_000..12_500_000).contains(&second_wait), "{second_wait}");
    }

    #[test]
    fn a_step_down_goes_below_what_the_link_already_holds_it_to() {
        let mut load = hd();
        // The link holds the call at 640x360@30 (two rungs down): the CPU's first step
        // goes straight to 640x360@15.
        let held = Rung { width: 640, height: 360, fps: 30 };
        let mut steps = None;
        for i in 0..150 {
            let capture = i * FRAME_US;
            steps = steps.or(load.on_encoded(capture, capture + 2 * FRAME_US, held));
        }
        assert_eq!(steps, Some(3));
        assert_eq!(load.allowed(), Some(Rung { width: 640, height: 360, fps: 15 }));
    }

    #[test]
    fn the_first_seconds_are_not_judged() {
        let mut load = hd();
        assert!(run(&mut load, 0, 2.0, 3.0).is_empty(), "keyframes at the start are slow");
    }

    #[test]
    fn a_step_up_goes_ahead_only_with_headroom() {
        let rungs = rungs(1920, 1080, 30);
        let (full, big, middle) = (rungs[0], rungs[1], rungs[2]);
        let mut load = CpuLoad::new(rungs);
        assert!(load.affords(middle, full), "nothing measured yet");
        // 540p takes 80 % of the interval: no step up, but anything no bigger goes.
        run_at(&mut load, middle, 0.8);
        assert!(!load.affords(middle, big));
        assert!(load.affords(middle, middle) && load.affords(big, middle));
        // Two seconds at 20 % smooth the usage to about 28 %: any step up goes.
        run_at(&mut load, middle, 0.2);
        assert!(load.affords(middle, big) && load.affords(middle, full));
    }

    /// Two seconds of 30 fps pictures at `rung`, each taking `usage` of the interval.
    fn run_at(load: &mut CpuLoad, rung: Rung, usage: f64) {
        let from = load.last_us.map_or(0, |last| last + FRAME_US);
        for i in 0..60 {
            let capture = from + i * FRAME_US;
            load.on_encoded(capture, capture + (usage * FRAME_US as f64) as u64, rung);
        }
    }
}
