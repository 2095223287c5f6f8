//! Raw mode's framing on TCP, as the Python streamer has it: an 8-byte little-endian
//! length, then that many bytes of pickle. The reader checks the length before it
//! allocates, and publishes where it is in the stream for the call's watchdog to judge.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::progress::{Progress, Reading};

/// How often a blocked read wakes up to check for hang-up (and the watchdog for deadlines).
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// The declared length is zero: no pickle is that short.
    #[error("the peer announced an empty frame (length 0)")]
    Empty,
    /// The declared length exceeds the limit.
    #[error("the peer announced a frame of {len} bytes, above the limit of {max} (raise it with --raw-max-bytes)")]
    TooLarge { len: u64, max: usize },
    /// The connection closed in the middle of a frame.
    #[error("the peer closed the connection in the middle of a frame ({got} of {expected} bytes)")]
    Truncated { got: usize, expected: usize },
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl FramingError {
    /// The peer closed or reset the connection (as opposed to sending something bad).
    pub fn peer_went_away(&self) -> bool {
        match self {
            Self::Truncated { .. } => true,
            Self::Io(e) => matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted),
            _ => false,
        }
    }
}

/// Checks an announced frame length against `max`; returns it as a size to allocate.
pub fn check_length(header: [u8; 8], max: usize) -> Result<usize, FramingError> {
    let len = u64::from_le_bytes(header);
    if len == 0 {
        return Err(FramingError::Empty);
    }
    match usize::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(FramingError::TooLarge { len, max }),
    }
}

/// Appends one frame to `out`: its length, then what `write_payload` appends. The length
/// is filled in afterwards, so a payload is built in place and never copied.
pub fn append_frame(out: &mut Vec<u8>, write_payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    write_payload(out);
    let len = (out.len() - start - 8) as u64;
    out[start..start + 8].copy_from_slice(&len.to_le_bytes());
}

/// Reads frames from a source whose reads time out every `POLL_INTERVAL` (a TCP stream
/// with a read timeout), reusing one buffer, and publishes where it is to `progress`.
pub struct FrameReader<'p, R> {
    inner: R,
    buf: Vec<u8>,
    max_frame: usize,
    progress: &'p Progress,
}

impl<'p, R: Read> FrameReader<'p, R> {
    pub fn new(inner: R, max_frame: usize, progress: &'p Progress) -> Self {
        Self { inner, buf: Vec::new(), max_frame, progress }
    }

    /// The next frame's bytes; `None` when the peer closed cleanly between frames or
    /// `stop` was set.
    pub fn next_frame(&mut self, stop: &AtomicBool) -> Result<Option<&[u8]>, FramingError> {
        let mut header = [0u8; 8];
        let Some(begun) = self.fill(&mut header, stop, true)? else { return Ok(None) };
        let len = check_length(header, self.max_frame)?;
        self.progress.set_reading(Reading::Body { begun, len });
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(len, 0);
        let complete = self.fill(&mut buf, stop, false);
        self.buf = buf;
        if complete?.is_none() {
            return Ok(None);
        }
        self.progress.set_reading(Reading::Between { since: Instant::now() });
        Ok(Some(&self.buf))
    }

    /// Fills `out` (not empty); returns when its first byte came. `None`: stopped, or
    /// (`at_boundary`) closed before the first byte. The first byte at a boundary begins a
    /// frame.
    fn fill(&mut self, out: &mut [u8], stop: &AtomicBool, at_boundary: bool) -> Result<Option<Instant>, FramingError> {
        debug_assert!(!out.is_empty());
        let mut got = 0;
        let mut first = None;
        while got < out.len() {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            match self.inner.read(&mut out[got..]) {
                Ok(0) if at_boundary && got == 0 => return Ok(None),
                Ok(0) => return Err(FramingError::Truncated { got, expected: out.len() }),
                Ok(n) => {
                    if first.is_none() {
                        let now = Instant::now();
                        if at_boundary {
                            self.progress.set_reading(Reading::Header { begun: now });
                        }
                        first = Some(now);
                    }
                    got += n;
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that serves chunks, then times out forever.
    struct Script(std::collections::VecDeque<Vec<u8>>, bool);

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                Some(mut chunk) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    if n < chunk.len() {
                        self.0.push_front(chunk.split_off(n));
                    }
                    Ok(n)
                }
                None if self.1 => Ok(0),
                None => {
                    std::thread::sleep(Duration::from_millis(5));
                    Err(io::ErrorKind::WouldBlock.into())
                }
            }
        }
    }

    fn reader(chunks: Vec<Vec<u8>>, closes: bool, progress: &Progress) -> FrameReader<'_, Script> {
        FrameReader::new(Script(chunks.into(), closes), 100, progress)
    }

    /// Reads the next frame until `stop` is set a little later; whether it got one.
    fn next_until_stopped(r: &mut FrameReader<Script>) -> bool {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let stop = &stop;
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(60));
                stop.store(true, Ordering::Relaxed);
            });
            r.next_frame(stop).unwrap().is_some()
        })
    }

    #[test]
    fn frames_round_trip_across_split_reads() {
        let mut wire = Vec::new();
        append_frame(&mut wire, |out| out.extend_from_slice(b"hello"));
        append_frame(&mut wire, |out| out.extend_from_slice(b"world!"));
        let chunks = wire.chunks(3).map(<[u8]>::to_vec).collect();
        let progress = Progress::new(Instant::now());
        let mut r = reader(chunks, true, &progress);
        let stop = AtomicBool::new(false);
        assert_eq!(r.next_frame(&stop).unwrap(), Some(&b"hello"[..]));
        assert_eq!(r.next_frame(&stop).unwrap(), Some(&b"world!"[..]));
        assert!(r.next_frame(&stop).unwrap().is_none(), "clean close between frames");
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        assert!(matches!(check_length(0u64.to_le_bytes(), 100), Err(FramingError::Empty)));
        assert!(matches!(check_length((1u64 << 63).to_le_bytes(), 100), Err(FramingError::TooLarge { .. })));
        assert!(matches!(check_length(u64::MAX.to_le_bytes(), 100), Err(FramingError::TooLarge { .. })));
        assert_eq!(check_length(100u64.to_le_bytes(), 100).unwrap(), 100);
    }

    #[test]
    fn a_header_cut_short_or_a_frame_cut_in_the_middle_is_an_error() {
        let stop = AtomicBool::new(false);
        let progress = Progress::new(Instant::now());
        let mut r = reader(vec![vec![5, 0, 0]], true, &progress);
        assert!(matches!(r.next_frame(&stop), Err(FramingError::Truncated { got: 3, expected: 8 })));
        let mut r = reader(vec![10u64.to_le_bytes().to_vec(), b"abc".to_vec()], true, &progress);
        assert!(matches!(r.next_frame(&stop), Err(FramingError::Truncated { got: 3, expected: 10 })));
    }

    #[test]
    fn the_reader_publishes_where_it_is_and_waits_until_stopped() {
        let t0 = Instant::now();
        let progress = Progress::new(t0);
        // Silence between frames: waited out (the watchdog judges it), until told to stop.
        let mut r = reader(vec![], false, &progress);
        assert!(!next_until_stopped(&mut r));
        assert_eq!(progress.reading(), Reading::Between { since: t0 });
        // Inside a length: the frame began with its first byte.
        let mut r = reader(vec![vec![10, 0, 0]], false, &progress);
        assert!(!next_until_stopped(&mut r));
        let Reading::Header { begun } = progress.reading() else { panic!("{:?}", progress.reading()) };
        // Inside a body: still the same beginning, now with a length to judge.
        let mut r = reader(vec![vec![10, 0, 0], vec![0, 0, 0, 0, 0], b"abc".to_vec()], false, &progress);
        assert!(!next_until_stopped(&mut r));
        let Reading::Body { begun: body_begun, len: 10 } = progress.reading() else {
            panic!("{:?}", progress.reading())
        };
        assert!(body_begun > begun, "a new frame, a new beginning");
        // A whole frame: between frames again, since it ended.
        let mut r = reader(vec![framed_hello()], false, &progress);
        assert!(next_until_stopped(&mut r));
        let Reading::Between { since } = progress.reading() else { panic!("{:?}", progress.reading()) };
        assert!(since >= body_begun);
    }

    fn framed_hello() -> Vec<u8> {
        let mut wire = Vec::new();
        append_frame(&mut wire, |out| out.extend_from_slice(b"hello"));
        wire
    }
}
