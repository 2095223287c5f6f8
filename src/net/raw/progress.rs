//! What each thread of a raw call is doing and since when: the reader and the writer
//! publish it, the call's watchdog judges it (`deadline`).

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

/// What the writer is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    /// Waiting for a picture of ours to send: the peer owes us nothing.
    Waiting,
    /// Sending a frame of `len` bytes (length included) since `begun`; the socket last
    /// accepted a part of it at `last_taken` (once the buffers are full, that is when the
    /// peer reads).
    Sending { begun: Instant, len: usize, last_taken: Instant },
}

/// Both, shared between the threads of one call.
#[derive(Debug)]
pub struct Progress {
    reading: Mutex<Reading>,
    writing: Mutex<Writing>,
}

impl Progress {
    /// A call that began at `now`: between frames, nothing to send yet.
    pub fn new(now: Instant) -> Self {
        Self { reading: Mutex::new(Reading::Between { since: now }), writing: Mutex::new(Writing::Waiting) }
    }

    pub fn reading(&self) -> Reading {
        *self.reading.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn writing(&self) -> Writing {
        *self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_reading(&self, reading: Reading) {
        *self.reading.lock().unwrap_or_else(|e| e.into_inner()) = reading;
    }

    pub fn set_writing(&self, writing: Writing) {
        *self.writing.lock().unwrap_or_else(|e| e.into_inner()) = writing;
    }
}
