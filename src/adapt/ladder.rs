//! The picture size and frame rate ladder, by bits per pixel as WebRTC's "balanced"
//! degradation does it: 720p -> 540p -> 360p -> 360p at half rate -> 180p at half rate
//! (each a scale of the largest size asked for). A step down when the bits each pixel gets
//! per frame stay below a low mark for a second, or at once when they fall below half of
//! it (a sharp drop of the link, not a twitch of the estimate); a step up only after some seconds in
//! which the higher rung would still get more than a high mark. The gap between the marks
//! is the hysteresis: the step up lands above the low mark, so it does not come back down.

/// The rungs, largest first: (scale numerator, denominator, halve the frame rate).
const SCALES: [(u32, u32, bool); 5] = [(1, 1, false), (3, 4, false), (1, 2, false), (1, 2, true), (1, 4, true)];
/// Below this many bits per pixel per frame, H.264 at these sizes turns to blocks: step down.
const LOW_BITS_PER_PIXEL: f64 = 0.04;
/// A higher rung is worth it when it would get at least this (the default bitrate gives 0.07).
const HIGH_BITS_PER_PIXEL: f64 = 0.06;
/// Below the low mark for this long before stepping down: one cut of a sawtooth is not a trend.
const DOWN_AFTER_US: u64 = 1_000_000;
/// So far below the low mark (the bitrate more than halved under it) that waiting only
/// delays the step: a new size costs a keyframe, and the keyframe a sharp drop forces
/// anyway (a stalled group starts afresh) had better already be at the size the link
/// carries. Waiting the second cost the drop scenario a 720p keyframe and then a 360p one.
const DEEP_BITS_PER_PIXEL: f64 = LOW_BITS_PER_PIXEL / 2.0;
/// Above the high mark for this long before stepping up (iroh-live waits 4 s): a size
/// change costs a keyframe, and an estimate that just rose may fall back.
const UP_AFTER_US: u64 = 4_000_000;
/// Smallest side a rung may have (H.264 macroblocks are 16 pixels).
const MIN_SIDE: u32 = 16;

/// A picture size and frame rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl Rung {
    /// Bits each pixel of each frame gets at `video_kbps`.
    fn bits_per_pixel(&self, video_kbps: u32) -> f64 {
        f64::from(video_kbps) * 1000.0 / (f64::from(self.width) * f64::from(self.height) * f64::from(self.fps))
    }
}

/// The rungs below `width` x `height` at `camera_fps`, largest first.
pub fn rungs(width: u32, height: u32, camera_fps: u32) -> Vec<Rung> {
    let camera_fps = camera_fps.max(1);
    let side = |full: u32, num: u32, den: u32| ((full * num / den) & !1).max(MIN_SIDE.min(full));
    SCALES
        .iter()
        .map(|&(num, den, halve)| Rung {
            width: side(width, num, den),
            height: side(height, num, den),
            fps: if halve { (camera_fps / 2).max(1) } else { camera_fps },
        })
        .collect()
}

/// See the module documentation.
#[derive(Debug)]
pub struct Ladder {
    rungs: Vec<Rung>,
    current: usize,
    low_since_us: Option<u64>,
    high_since_us: Option<u64>,
}

impl Ladder {
    /// The ladder below `width` x `height` at `camera_fps`, starting on the largest rung that
    /// `video_kbps` keeps above the low mark.
    pub fn new(width: u32, height: u32, camera_fps: u32, video_kbps: u32) -> Self {
        let rungs = rungs(width, height, camera_fps);
        let current = rungs
            .iter()
            .position(|rung| rung.bits_per_pixel(video_kbps) >= LOW_BITS_PER_PIXEL)
            .unwrap_or(rungs.len() - 1);
        Self { rungs, current, low_since_us: None, high_since_us: None }
    }

    /// The rung in use.
    pub fn current(&self) -> Rung {
        self.rungs[self.current]
    }

    /// Takes a video bitrate the path has shown it carries (a probe found the room): steps
    /// up at once to the largest rung that gets the high mark, as the 4 s wait is for rises
    /// that may fall back. Returns the rung to use.
    pub fn update_shown(&mut self, now_us: u64, video_kbps: u32) -> Rung {
        if let Some(best) = self.best_rung_above(video_kbps) {
            self.current = best;
            self.high_since_us = None;
            self.low_since_us = None;
        }
        self.update(now_us, video_kbps)
    }

    /// The largest rung above the current one that `video_kbps` gives the high mark.
    fn best_rung_above(&self, video_kbps: u32) -> Option<usize> {
        (0..self.current).find(|&index| self.rungs[index].bits_per_pixel(video_kbps) >= HIGH_BITS_PER_PIXEL)
    }

    /// Takes the video bitrate now in force; returns the rung to use.
    pub fn update(&mut self, now_us: u64, video_kbps: u32) -> Rung {
        let fits = |rung: &Rung, mark: f64| rung.bits_per_pixel(video_kbps) >= mark;
        if fits(&self.rungs[self.current], LOW_BITS_PER_PIXEL) {
            self.low_since_us = None;
        } else if self.current + 1 < self.rungs.len() {
            let since = *self.low_since_us.get_or_insert(now_us);
            let deep = !fits(&self.rungs[self.current], DEEP_BITS_PER_PIXEL);
            if deep || now_us.saturating_sub(since) >= DOWN_AFTER_US {
                let below = self.current + 1;
                self.current = (below..self.rungs.len())
                    .find(|&index| fits(&self.rungs[index], LOW_BITS_PER_PIXEL))
                    .unwrap_or(self.rungs.len() - 1);
                self.low_since_us = None;
                self.high_since_us = None;
                return self.current();
            }
        }
        match self.best_rung_above(video_kbps) {
            None => self.high_since_us = None,
            Some(best) => {
                let since = *self.high_since_us.get_or_insert(now_us);
                if now_us.saturating_sub(since) >= UP_AFTER_US {
                    self.current = best;
                    self.high_since_us = None;
                    self.low_since_us = None;
                }
            }
        }
        self.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000;

    fn hd(video_kbps: u32) -> Ladder {
        Ladder::new(1280, 720, 30, video_kbps)
    }

    fn rung(width: u32, height: u32, fps: u32) -> Rung {
        Rung { width, height, fps }
    }

    #[test]
    fn the_rungs_scale_the_largest_size() {
        let sizes: Vec<Rung> = hd(2_000).rungs.clone();
        assert_eq!(
            sizes,
            [rung(1280, 720, 30), rung(960, 540, 30), rung(640, 360, 30), rung(640, 360, 15), rung(320, 180, 15)]
        );
        let odd = Ladder::new(1918, 1078, 25, 100).rungs;
        assert!(odd.iter().all(|rung| rung.width % 2 == 0 && rung.height % 2 == 0));
        assert_eq!(odd[4].fps, 12);
        let tiny = Ladder::new(32, 24, 1, 100).rungs;
        assert!(tiny.iter().all(|rung| rung.width >= 16 && rung.height >= 16 && rung.fps == 1));
    }

    #[test]
    fn the_first_rung_follows_the_bitrate() {
        assert_eq!(hd(1_900).current(), rung(1280, 720, 30));
        assert_eq!(hd(700).current(), rung(960, 540, 30));
        assert_eq!(hd(230).current(), rung(640, 360, 15));
        assert_eq!(hd(20).current(), rung(320, 180, 15));
    }

    #[test]
    fn steps_down_after_a_second_below_the_low_mark() {
        // 800 kbit/s gives 720p30 0.029 bits per pixel: under the low mark, above half of it.
        let mut ladder = hd(1_900);
        assert_eq!(ladder.update(0, 800), rung(1280, 720, 30));
        assert_eq!(ladder.update(SECOND / 2, 1_500), rung(1280, 720, 30), "a short dip is ignored");
        assert_eq!(ladder.update(SECOND, 800), rung(1280, 720, 30));
        assert_eq!(ladder.update(2 * SECOND - 1, 800), rung(1280, 720, 30));
        assert_eq!(ladder.update(2 * SECOND, 800), rung(960, 540, 30));
    }

    #[test]
    fn a_sharp_drop_steps_down_at_once_several_rungs_if_need_be() {
        // 230 kbit/s gives 720p30 0.008 bits per pixel: a quarter of the low mark.
        let mut ladder = hd(1_900);
        assert_eq!(ladder.update(0, 1_900), rung(1280, 720, 30));
        assert_eq!(ladder.update(SECOND / 10, 230), rung(640, 360, 15));
    }

    #[test]
    fn steps_up_after_seconds_above_the_high_mark_and_does_not_flap() {
        let mut ladder = hd(230);
        let mut now = 0;
        for _ in 0..40 {
            assert_eq!(ladder.update(now, 1_900), rung(640, 360, 15));
            now += SECOND / 10;
        }
        assert_eq!(ladder.update(now, 1_900), rung(1280, 720, 30));
        // Anywhere between the marks, it stays.
        for kbps in [1_200, 1_700, 1_150, 1_900] {
            for _ in 0..100 {
                now += SECOND / 10;
                assert_eq!(ladder.update(now, kbps), rung(1280, 720, 30));
            }
        }
    }
}
