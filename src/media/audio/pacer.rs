//! Real-time pacing for the sources and sinks that are not devices (tone, WAV file,
//! nothing): one tick every 10 ms on absolute deadlines, so they keep time like a sound
//! card does and never drift.

use std::time::{Duration, Instant};

use super::FRAME_US;

#[derive(Debug)]
pub struct Pacer {
    started: Instant,
    ticks: u64,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pacer {
    pub fn new() -> Self {
        Self { started: Instant::now(), ticks: 0 }
    }

    /// Sleeps until the next 10 ms boundary (at most `limit`); true when it was reached.
    pub fn wait(&mut self, limit: Duration) -> bool {
        let due = self.started + Duration::from_micros(self.ticks * FRAME_US);
        let now = Instant::now();
        if due > now {
            let wait = due - now;
            if wait > limit {
                std::thread::sleep(limit);
                return false;
            }
            std::thread::sleep(wait);
        }
        self.ticks += 1;
        true
    }
}
