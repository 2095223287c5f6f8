//! One raw-mode call on a TCP connection. A reader thread takes the peer's pictures
//! (framing, strict pickle reader, measurement, window); a writer thread sends ours, the
//! newest picture each time. They share nothing but the socket, so a peer that never
//! reads (the original server) can block only the writer, never what we show.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::deadline::{Deadlines, Role};
use super::framing::{FrameReader, FramingError, POLL_INTERVAL, append_frame};
use super::pickle_read::{PickleError, PictureLimits, read_picture};
use super::pickle_write::write_picture;
use super::progress::{Progress, Writing};
use crate::call::{CallContext, CallOutcome};
use crate::media::convert::{bgr_to_i420, i420_to_bgr};
use crate::media::pattern::{pattern_frame, read_index};
use crate::media::quality::psnr;
use crate::media::seed_pattern::{read_stamp, seed_picture};
use crate::media::y4m::Y4mWriter;
use crate::net::clock::now_us;
use crate::net::endpoint::Ending;
use crate::stats::{CallStats, Reporter};

/// Limits on what a raw peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLimits {
    /// Largest frame (pickle) accepted, in bytes.
    pub max_frame_bytes: usize,
    pub picture: PictureLimits,
    /// A frame begun must be complete within this, plus its length at the minimum rate
    /// (`deadline`).
    pub stall_timeout: Duration,
}

/// Why the reader stopped.
#[derive(Debug, thiserror::Error)]
enum ReadEnd {
    #[error(transparent)]
    Framing(#[from] FramingError),
    #[error("refused a picture from the peer: {0}")]
    Pickle(#[from] PickleError),
    #[error(transparent)]
    Record(#[from] crate::media::y4m::Y4mError),
}

/// Runs a raw call until either side hangs up or the peer misbehaves (`deadline` says
/// when a peer is holding the line).
pub async fn run_raw_call(
    stream: TcpStream,
    ctx: &CallContext,
    limits: RawLimits,
    role: Role,
    started: Instant,
) -> std::io::Result<CallOutcome> {
    let stats = Arc::new(CallStats::new(started));
    let stop = Arc::new(AtomicBool::new(false));
    let connected = Instant::now();
    let progress = Arc::new(Progress::new(connected));
    let deadlines = Deadlines { stall: limits.stall_timeout, role };
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL_INTERVAL))?;
    ctx.view.set_in_call(true);

    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let reader = {
        let (stream, stats, stop) = (stream.try_clone()?, Arc::clone(&stats), Arc::clone(&stop));
        let progress = Arc::clone(&progress);
        let record = ctx.settings.record.clone();
        let (remote, fps) = (Arc::clone(&ctx.view.remote), ctx.settings.encoder.fps);
        std::thread::Builder::new().name("raw-reader".into()).spawn(move || {
            let mut record = match record.as_deref().map(|path| Y4mWriter::create(path, fps)).transpose() {
                Ok(record) => record,
                Err(e) => return done_tx.send(Err(ReadEnd::from(e))).unwrap_or(()),
            };
            let result = read_pictures(stream, limits, &progress, &stats, &stop, &mut record, |picture| {
                remote.put(Arc::new(picture));
            });
            if let Some(writer) = record
                && let Err(e) = writer.finish()
            {
                eprintln!("chat: recording: {e}");
            }
            let _ = done_tx.send(result);
        })?
    };
    let writer = {
        let (mut stream, stats, stop) = (stream.try_clone()?, Arc::clone(&stats), Arc::clone(&stop));
        let progress = Arc::clone(&progress);
        let input = Arc::clone(&ctx.encoder_input);
        input.try_take(); // a picture from before the call
        std::thread::Builder::new().name("raw-writer".into()).spawn(move || {
            let mut buf = Vec::new();
            while !stop.load(Relaxed) {
                let Some(frame) = input.take_timeout(Duration::from_millis(100)) else { continue };
                buf.clear();
                let bgr = i420_to_bgr(&frame);
                append_frame(&mut buf, |out| write_picture(out, frame.width, frame.height, &bgr));
                if send_frame(&mut stream, &buf, &progress).is_err() {
                    return;
                }
                stats.record_sent(buf.len());
            }
        })?
    };

    let mut reporter = Reporter::new(&stats);
    let mut ticker = CallContext::report_ticker();
    let mut watchdog = tokio::time::interval(POLL_INTERVAL);
    let hang_up = ctx.local_hang_up();
    tokio::pin!(hang_up, done_rx);
    let ending = loop {
        tokio::select! {
            result = &mut done_rx => {
                let at_once = refused(role, stats.bytes_received.load(Relaxed), connected.elapsed());
                break match result {
                    Ok(Ok(())) if at_once => Ending::Other(REFUSED.into()),
                    Ok(Ok(())) | Err(_) => Ending::PeerHungUp,
                    Ok(Err(ReadEnd::Framing(e))) if e.peer_went_away() && at_once => Ending::Other(REFUSED.into()),
                    Ok(Err(ReadEnd::Framing(e @ (FramingError::Truncated { .. } | FramingError::Io(_)))))
                        if e.peer_went_away() =>
                    {
                        // The original server closes with our unread pictures in its buffer,
                        // which resets the connection under its own last picture.
                        eprintln!("chat: {e}; that picture was dropped");
                        Ending::PeerHungUp
                    }
                    Ok(Err(e)) => Ending::Other(e.to_string()),
                };
            }
            _ = &mut hang_up => break Ending::Local,
            _ = ticker.tick() => ctx.report(&reporter.tick(&stats, None)),
            _ = watchdog.tick() => if let Err(held) = deadlines.check(progress.reading(), progress.writing(), Instant::now()) {
                break Ending::Other(held.to_string());
            },
        }
    };
    stats.media_ended();
    stop.store(true, Relaxed);
    // Unblocks a writer stuck on a peer that does not read.
    let _ = stream.shutdown(Shutdown::Both);
    let _ = tokio::task::spawn_blocking(move || {
        let _ = reader.join();
        let _ = writer.join();
    })
    .await;
    Ok(ctx.finish(&stats, ending, None))
}

/// A busy listener closes a raw caller's connection at once. Whether it read any of our
/// pictures first cannot be seen from here (its kernel takes them either way), so time
/// tells: a listener that closes this soon, before a picture came, refused the call.
const REFUSED_WITHIN: Duration = Duration::from_secs(1);

/// What a raw caller is told when the listener refused it.
const REFUSED: &str = "the listener closed the connection at once, before sending a picture: \
                       it may be busy with another raw call; try again later";

/// Whether a peer that closed the connection `connected_for` after it was made, having
/// sent `received_bytes` of whole frames, refused the call.
fn refused(role: Role, received_bytes: u64, connected_for: Duration) -> bool {
    matches!(role, Role::Caller { .. }) && received_bytes == 0 && connected_for < REFUSED_WITHIN
}

/// How much of a frame is handed to the socket at once: how finely the watchdog sees the
/// peer take our pictures.
const SEND_CHUNK: usize = 64 * 1024;

/// Sends one frame, publishing how far the socket has taken it.
fn send_frame(stream: &mut impl Write, frame: &[u8], progress: &Progress) -> std::io::Result<()> {
    let (begun, len) = (Instant::now(), frame.len());
    progress.set_writing(Writing::Sending { begun, len, last_taken: begun });
    for chunk in frame.chunks(SEND_CHUNK) {
        stream.write_all(chunk)?;
        progress.set_writing(Writing::Sending { begun, len, last_taken: Instant::now() });
    }
    progress.set_writing(Writing::Waiting);
    Ok(())
}

/// The reader's loop: frames in, pictures out, until the peer closes (`Ok`) or misbehaves.
fn read_pictures(
    stream: TcpStream,
    limits: RawLimits,
    progress: &Progress,
    stats: &CallStats,
    stop: &AtomicBool,
    record: &mut Option<Y4mWriter>,
    mut show: impl FnMut(crate::media::frame::VideoFrame),
) -> Result<(), ReadEnd> {
    let mut frames = FrameReader::new(stream, limits.max_frame_bytes, progress);
    let mut last_index = None;
    while let Some(bytes) = frames.next_frame(stop)? {
        stats.bytes_received.fetch_add(bytes.len() as u64 + 8, Relaxed);
        let picture = read_picture(bytes, limits.picture)?;
        let received_us = now_us();
        // Raw pictures carry no metadata; test sources stamp an index (and the seed's a time).
        let (mut latency_ms, mut quality, mut index) = (None, None, None);
        if let Some(stamp) = read_stamp(&picture.bgr) {
            latency_ms = Some((received_us as f64 / 1e6 - stamp.captured_s) * 1000.0);
            quality = psnr(&seed_picture(stamp, picture.width, picture.height), &picture.bgr);
            index = Some(stamp.index);
        }
        let Some(frame) = bgr_to_i420(&picture.bgr, picture.width, picture.height, received_us) else { continue };
        if quality.is_none()
            && let Some(i) = read_index(&frame)
        {
            quality = psnr(&pattern_frame(i, frame.width, frame.height, 0).y, &frame.y);
            index = Some(u64::from(i));
        }
        if let (Some(last), Some(index)) = (last_index, index) {
            stats.frames_skipped.fetch_add(index.saturating_sub(last + 1), Relaxed);
        }
        last_index = index.or(last_index);
        stats.record_shown(latency_ms, quality);
        if let Some(writer) = record {
            writer.write(&frame)?;
        }
        show(frame);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes `room` bytes, then fails as a reset connection does.
    struct Socket {
        room: usize,
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::ConnectionReset.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_caller_whose_listener_closes_at_once_without_a_picture_was_refused() {
        let caller = Role::Caller { idle: Duration::from_secs(10) };
        assert!(refused(caller, 0, Duration::from_millis(30)));
        // A call that carried pictures, or went on a while, was hung up.
        assert!(!refused(caller, 230_481, Duration::from_millis(30)));
        assert!(!refused(caller, 0, REFUSED_WITHIN));
        // A listener refuses nobody by being hung up on.
        assert!(!refused(Role::Listener, 0, Duration::from_millis(30)));
    }

    #[test]
    fn sending_publishes_how_far_the_peer_took_the_frame() {
        let progress = Progress::new(Instant::now());
        let frame = vec![0u8; 3 * SEND_CHUNK];
        send_frame(&mut Socket { room: frame.len() }, &frame, &progress).unwrap();
        assert_eq!(progress.writing(), Writing::Waiting, "all taken: the peer owes nothing");
        assert!(send_frame(&mut Socket { room: SEND_CHUNK + 1 }, &frame, &progress).is_err());
        let Writing::Sending { begun, len, last_taken } = progress.writing() else {
            panic!("{:?}", progress.writing())
        };
        assert_eq!(len, frame.len());
        assert!(last_taken > begun, "the first chunk was taken after the frame began");
    }
}
