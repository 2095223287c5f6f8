//! When a raw peer is holding the line: the rules that drop it, as plain code over what
//! the call is doing, since when, and the time now (so they are tested without sleeping).
//! A frame or picture is judged whole: a peer that trickles bytes gains nothing by it.

use std::time::{Duration, Instant};

use super::progress::{Reading, Writing};

/// The slowest link a frame or picture is given time for, on top of the stall timeout.
/// 256 KiB/s (about 2 Mbit/s) still carries a 640x480 picture (900 KiB) in under 4 s and
/// the largest frame accepted by default (3840x2160, 24 MiB) in about 100 s; a link slower
/// than that shows a picture every few seconds at best, which is no video call, while a
/// peer that wants to hold the line must at least send (or read) this fast.
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
    /// We took the call. The peer need not send (the original client only watches), but
    /// it must send pictures or take ours, and take ours in time.
    Listener,
    /// We called: the peer must send a picture at least every `idle`. It need not read
    /// (the original server never does).
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
    /// The listener's peer neither sent a picture nor took any of ours for the stall timeout.
    #[error(
        "the peer sent no picture and took none of ours for {}; dropped it (a raw peer must send pictures \
         or read ours)",
        seconds(*.0)
    )]
    Silent(Duration),
    /// The listener's peer did not take one of our pictures within its allowance.
    #[error(
        "the peer did not take our picture of {len} bytes within {} (the stall timeout plus {} KiB/s); \
         dropped it (it reads too slowly for raw mode, or not at all)",
        seconds(*allowed),
        MIN_RATE_BYTES_PER_S / 1024
    )]
    NotTaken { len: usize, allowed: Duration },
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
    /// Whether the peer is holding the line at `now`, given what the reader and the
    /// writer are doing.
    pub fn check(&self, reading: Reading, writing: Writing, now: Instant) -> Result<(), Held> {
        let waited = |since: Instant| now.saturating_duration_since(since);
        // How long no frame has been on its way (none while one is).
        let quiet = match reading {
            Reading::Header { begun } if waited(begun) >= self.stall => return Err(Held::Header(self.stall)),
            Reading::Body { begun, len } => {
                let allowed = allowance(self.stall, HEADER_BYTES + len);
                if waited(begun) >= allowed {
                    return Err(Held::Frame { len, allowed });
                }
                Duration::ZERO
            }
            Reading::Header { .. } => Duration::ZERO,
            Reading::Between { since } => waited(since),
        };
        match (self.role, writing) {
            (Role::Caller { idle }, _) if quiet >= idle => Err(Held::Idle(idle)),
            (Role::Listener, Writing::Sending { begun, len, last_taken }) => {
                if quiet >= self.stall && waited(last_taken) >= self.stall {
                    return Err(Held::Silent(self.stall));
                }
                let allowed = allowance(self.stall, len);
                if waited(begun) >= allowed { Err(Held::NotTaken { len, allowed }) } else { Ok(()) }
            }
            // With nothing of ours to send (camera off), a watcher and a silent peer look
            // alike: both are kept.
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(5);
    const LISTENER: Deadlines = Deadlines { stall: STALL, role: Role::Listener };
    const CALLER: Deadlines = Deadlines { stall: STALL, role: Role::Caller { idle: Duration::from_secs(10) } };

    const WAITING: Writing = Writing::Waiting;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_header_begun_must_be_complete_within_the_stall_timeout() {
        let t0 = Instant::now();
        let header = Reading::Header { begun: t0 };
        for rules in [LISTENER, CALLER] {
            assert_eq!(rules.check(header, WAITING, t0 + ms(4_999)), Ok(()));
            // However the bytes came: one a second restarts nothing.
            assert_eq!(rules.check(header, WAITING, t0 + STALL), Err(Held::Header(STALL)));
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
        assert_eq!(LISTENER.check(body, WAITING, t0 + allowed - ms(1)), Ok(()));
        assert_eq!(LISTENER.check(body, WAITING, t0 + allowed), Err(Held::Frame { len, allowed }));
        // A small frame has hardly more than the stall timeout.
        let small = Reading::Body { begun: t0, len: 100 };
        assert_eq!(CALLER.check(small, WAITING, t0 + ms(5_000)), Ok(()));
        assert!(CALLER.check(small, WAITING, t0 + ms(5_001)).is_err());
    }

    #[test]
    fn only_a_caller_minds_silence_between_frames() {
        let t0 = Instant::now();
        let between = Reading::Between { since: t0 };
        assert_eq!(CALLER.check(between, WAITING, t0 + ms(9_999)), Ok(()));
        assert_eq!(CALLER.check(between, WAITING, t0 + ms(10_000)), Err(Held::Idle(Duration::from_secs(10))));
        assert_eq!(LISTENER.check(between, WAITING, t0 + Duration::from_secs(3600)), Ok(()));
    }

    #[test]
    fn a_listener_drops_a_peer_that_neither_sends_nor_takes_pictures() {
        let t0 = Instant::now();
        // The socket took our first pictures, then nothing from 150 ms on.
        let stuck = Writing::Sending { begun: t0 + ms(100), len: 230_473, last_taken: t0 + ms(150) };
        let silent = Reading::Between { since: t0 };
        assert_eq!(LISTENER.check(silent, stuck, t0 + ms(5_149)), Ok(()));
        assert_eq!(LISTENER.check(silent, stuck, t0 + ms(5_150)), Err(Held::Silent(STALL)));
        // A peer that sends pictures is not silent, though it must still take ours in time.
        let sending = Reading::Between { since: t0 + ms(5_000) };
        assert_eq!(LISTENER.check(sending, stuck, t0 + ms(5_150)), Ok(()));
        let len = 230_473;
        let allowed = allowance(STALL, len);
        let sending = Reading::Body { begun: t0 + allowed, len: 100 };
        assert_eq!(LISTENER.check(sending, stuck, t0 + ms(100) + allowed), Err(Held::NotTaken { len, allowed }));
        // A caller never minds whether the peer reads: the original server never does.
        let server = Reading::Between { since: t0 + ms(3_599_000) };
        assert_eq!(CALLER.check(server, stuck, t0 + Duration::from_secs(3600)), Ok(()));
    }

    #[test]
    fn a_listener_keeps_a_watcher_that_takes_our_pictures_and_sends_none() {
        let t0 = Instant::now();
        let watcher = Reading::Between { since: t0 };
        let later = t0 + Duration::from_secs(3600);
        let taking = Writing::Sending { begun: later - ms(20), len: 921_738, last_taken: later - ms(1) };
        assert_eq!(LISTENER.check(watcher, taking, later), Ok(()));
        assert_eq!(LISTENER.check(watcher, WAITING, later), Ok(()));
        // A large picture on a slow link: parts keep being taken, the whole gets its allowance.
        let len = 4 * 1024 * 1024;
        let allowed = allowance(STALL, len);
        let slow = Writing::Sending { begun: t0, len, last_taken: t0 + allowed - ms(100) };
        assert_eq!(LISTENER.check(watcher, slow, t0 + allowed - ms(1)), Ok(()));
        assert_eq!(LISTENER.check(watcher, slow, t0 + allowed), Err(Held::NotTaken { len, allowed }));
    }

    #[test]
    fn a_clock_read_before_the_event_is_no_wait() {
        let t0 = Instant::now();
        assert_eq!(LISTENER.check(Reading::Header { begun: t0 + ms(10) }, WAITING, t0), Ok(()));
    }

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(seconds(STALL), "5 s");
        assert_eq!(seconds(ms(8_516)), "8.5 s");
    }
}
