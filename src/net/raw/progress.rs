//! What a raw call's reader is doing and since when: its thread publishes it, the call's
//! watchdog judges it (`deadline`).

use std::sync::Mutex;
use std::time::Instant;

/// Where the reader is in the peer's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Between frames, since the last one ended (or the call began).
    Between { since: Instant },
    /// Inside a frame's 8-byte length, whose first byte came at `begun`.
    Header { begun: Instant },
    /// Inside a frame that began at `begun` and announced a body of `len` bytes.
    Body { begun: Instant, len: usize },
}

/// Shared between the threads of one call.
#[derive(Debug)]
pub struct Progress {
    reading: Mutex<Reading>,
}

impl Progress {
    /// A call that began at `now`: between frames.
    pub fn new(now: Instant) -> Self {
        Self { reading: Mutex::new(Reading::Between { since: now }) }
    }

    pub fn reading(&self) -> Reading {
        *self.reading.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_reading(&self, reading: Reading) {
        *self.reading.lock().unwrap_or_else(|e| e.into_inner()) = reading;
    }
}
