//! When a raw peer is holding the line: the rules that drop it, as plain code over what
//! the call is doing, since when, and the time now (so they are tested without sleeping).
//! A frame is judged whole: a peer that trickles bytes gains nothing by it.

use std::time::{Duration, Instant};

use super::progress::Reading;

/// The slowest link a frame is given time for, on top of the stall timeout. 256 KiB/s
/// (about 2 Mbit/s) still carries a 640x480 picture (900 KiB) in under 4 s and the largest
/// frame accepted by default (3840x2160, 24 MiB) in about 100 s; a link slower than that
/// shows a picture every few seconds at best, which is no video call, while a peer that
/// wants to hold the line must at least send this fast.
pub const MIN_RATE_BYTES_PER_S: u32 = 256 * 1024;

/// Bytes of a frame's length, before its body.
const HEADER_BYTES: usize = 8;

/// How long a frame of `len` bytes (length included) may take once begun.
pub fn allowance(stall: Duration, len: usize) -> Duration {
    stall + Duration::from_secs_f64(len as f64 / f64::from(MIN_RATE_BYTES_PER_S))
}

/// Which side of the call we are: what is asked of the peer differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We took the call. The peer need not send (the original client only watches).
    Listener,
    /// We called: the peer must send a picture at least every `idle`.
    Caller { idle: Duration },
}

/// Why the peer was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Held {
    /// A frame's 8-byte length began and was not complete within the stall timeout.
    #[error(
        "the peer stalled: it began a frame but did not complete its 8-byte length within {}; \
         dropped it (it is not a raw-mode streamer, or it is holding the line)",
        seconds(*.0)
    )]
    Header(Duration),
    /// A frame was not complete within its allowance.
    #[error(
        "the peer stalled: its frame of {len} bytes was not complete within {} (the stall timeout plus \
         {} KiB/s); dropped it (the link is too slow for raw mode, or the peer is holding the line)",
        seconds(*allowed),
        MIN_RATE_BYTES_PER_S / 1024
    )]
    Frame { len: usize, allowed: Duration },
    /// A caller's peer sent no picture for its idle time.
    #[error(
        "the peer sent no picture for {}: is it `chat --listen --raw` or the original server, with a camera on?",
        seconds(*.0)
    )]
    Idle(Duration),
}

/// "5 s", "8.5 s".
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s:.1} s") }
}

/// The rules one raw call keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// A frame begun must be complete within this, plus its length at the minimum rate.
    pub stall: Duration,
    pub role: Role,
}

impl Deadlines {
    /// Whether the peer is holding the line at `now`, given where the reader is.
    pub fn check(&self, reading: Reading, now: Instant) -> Result<(), Held> {
        let waited = |since: Instant| now.saturating_duration_since(since);
        match reading {
            Reading::Header { begun } if waited(begun) >= self.stall => Err(Held::Header(self.stall)),
            Reading::Body { begun, len } => {
                let allowed = allowance(self.stall, HEADER_BYTES + len);
                if waited(begun) >= allowed { Err(Held::Frame { len, allowed }) } else { Ok(()) }
            }
            Reading::Between { since } => match self.role {
                Role::Caller { idle } if waited(since) >= idle => Err(Held::Idle(idle)),
                _ => Ok(()),
            },
            Reading::Header { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(5);
    const LISTENER: Deadlines = Deadlines { stall: STALL, role: Role::Listener };
    const CALLER: Deadlines = Deadlines { stall: STALL, role: Role::Caller { idle: Duration::from_secs(10) } };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_header_begun_must_be_complete_within_the_stall_timeout() {
        let t0 = Instant::now();
        let header = Reading::Header { begun: t0 };
        for rules in [LISTENER, CALLER] {
            assert_eq!(rules.check(header, t0 + ms(4_999)), Ok(()));
            // However the bytes came: one a second restarts nothing.
            assert_eq!(rules.check(header, t0 + STALL), Err(Held::Header(STALL)));
        }
    }

    #[test]
    fn a_frame_gets_the_stall_timeout_plus_its_length_at_the_minimum_rate() {
        let t0 = Instant::now();
        // 900 KiB - 8 of body, 900 KiB whole: 3.515625 s at 256 KiB/s.
        let len = 900 * 1024 - 8;
        let body = Reading::Body { begun: t0, len };
        let allowed = STALL + Duration::from_secs_f64(3.515625);
        assert_eq!(allowance(STALL, len + 8), allowed);
        assert_eq!(LISTENER.check(body, t0 + allowed - ms(1)), Ok(()));
        assert_eq!(LISTENER.check(body, t0 + allowed), Err(Held::Frame { len, allowed }));
        // A small frame has hardly more than the stall timeout.
        let small = Reading::Body { begun: t0, len: 100 };
        assert_eq!(CALLER.check(small, t0 + ms(5_000)), Ok(()));
        assert!(CALLER.check(small, t0 + ms(5_001)).is_err());
    }

    #[test]
    fn only_a_caller_minds_silence_between_frames() {
        let t0 = Instant::now();
        let between = Reading::Between { since: t0 };
        assert_eq!(CALLER.check(between, t0 + ms(9_999)), Ok(()));
        assert_eq!(CALLER.check(between, t0 + ms(10_000)), Err(Held::Idle(Duration::from_secs(10))));
        assert_eq!(LISTENER.check(between, t0 + Duration::from_secs(3600)), Ok(()));
    }

    #[test]
    fn a_clock_read_before_the_event_is_no_wait() {
        let t0 = Instant::now();
        assert_eq!(LISTENER.check(Reading::Header { begun: t0 + ms(10) }, t0), Ok(()));
    }

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(seconds(STALL), "5 s");
        assert_eq!(seconds(ms(8_516)), "8.5 s");
    }
}
