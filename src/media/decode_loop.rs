//! The decoder thread: decodes the peer's pictures in order, asks for a keyframe when the
//! chain of references is broken, measures each picture (latency, PSNR against the test
//! pattern, skipped and frozen frames, offset from the sound), records it, and hands it to
//! the window, held back if need be until the sound captured with it plays. After a
//! outage it asks for a keyframe and shows nothing stale (`freshness`).
//!
//! The peer may change its picture size during the call (its encoder follows the network):
//! each size starts with an IDR picture whose SPS the decoder follows, and everything after
//! it takes each picture's own size. PSNR is measured only on pictures of the size the peer
//! announced in its hello: the test pattern is drawn in pixels, so a pattern scaled down is
//! not the pattern drawn at the smaller size, and its index stamp does not survive scaling.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::codec::{CodecError, VideoDecoder};
use super::frame::{SharedFrame, VideoFrame};
use super::freshness::Freshness;
use super::lip_sync::{LipSync, PictureDelay};
use super::pattern::{pattern_frame, read_index};
use super::quality::psnr;
use super::sps::check_access_unit;
use super::y4m::Y4mWriter;
use crate::latest::Latest;
use crate::net::clock::{ClockSync, now_us};
use crate::stats::CallStats;

/// Test-pattern pictures whose index is a multiple of this are measured for PSNR: a
/// sample keeps the figure honest (its mean over a second) at a quarter of the cost.
const PSNR_EVERY: u32 = 4;

/// An encoded picture as it came off the network.
#[derive(Debug)]
pub struct ReceivedFrame {
    /// The group (video stream) it came on; groups count up.
    pub group: u64,
    pub seq: u64,
    pub capture_us: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// Decides which received frames can be decoded: a P picture only directly after its
/// predecessor in the same group; anything else waits for the next keyframe. Pure state,
/// so the rules are tested without a decoder.
#[derive(Debug, Default)]
pub struct ReferenceChain {
    group: Option<u64>,
    last_seq: Option<u64>,
    broken: bool,
}

/// What to do with a received frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Decode,
    /// From a group older than the one being shown.
    DropStale,
    /// Its reference is missing: drop it and ask for a keyframe.
    DropBroken,
}

impl ReferenceChain {
    pub fn admit(&mut self, group: u64, seq: u64, keyframe: bool) -> Verdict {
        if self.group.is_some_and(|current| group < current) {
            return Verdict::DropStale;
        }
        if keyframe {
            self.group = Some(group);
            self.last_seq = Some(seq);
            self.broken = false;
            return Verdict::Decode;
        }
        let follows = self.group == Some(group) && self.last_seq.is_some_and(|last| seq == last + 1);
        if self.broken || !follows {
            self.broken = true;
            return Verdict::DropBroken;
        }
        self.last_seq = Some(seq);
        Verdict::Decode
    }

    /// The decoder failed on the last admitted frame.
    pub fn break_chain(&mut self) {
        self.broken = true;
    }
}

/// Limits keyframe requests to one per `interval`: a request takes a round trip to answer.
#[derive(Debug)]
pub struct KeyframeRequests {
    interval: Duration,
    last: Option<Instant>,
}

impl KeyframeRequests {
    pub fn new(interval: Duration) -> Self {
        Self { interval, last: None }
    }

    /// Whether a request may go out at `now` (and if so, notes that it did).
    pub fn should_send(&mut self, now: Instant) -> bool {
        if self.last.is_some_and(|last| now.duration_since(last) < self.interval) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// Everything the decoder thread needs.
pub struct DecodeLoop {
    pub input: Receiver<ReceivedFrame>,
    pub output: Arc<Latest<SharedFrame>>,
    pub request_keyframe: Box<dyn Fn() + Send>,
    /// Counts the link's returns after outages (the call's `Adaptation` bumps it).
    pub link_back: tokio::sync::watch::Receiver<u64>,
    /// Ends the call: the peer sent video we refuse to decode (the reason is given).
    pub refuse: Box<dyn Fn(String) + Send>,
    pub clock: Arc<Mutex<ClockSync>>,
    pub stats: Arc<CallStats>,
    pub record: Option<Y4mWriter>,
    /// The peer's frame rate from its hello, for counting frozen intervals.
    pub peer_fps: Option<u32>,
    /// The picture size from the peer's hello: the only size PSNR is measured at.
    pub peer_size: Option<(usize, usize)>,
    /// How long the peer's sound takes, to hold pictures for.
    pub lip_sync: Arc<LipSync>,
    pub stop: Arc<AtomicBool>,
}

impl DecodeLoop {
    pub fn spawn(self) -> Result<JoinHandle<()>, CodecError> {
        let decoder = VideoDecoder::new()?;
        Ok(std::thread::Builder::new()
            .name("decoder".into())
            .spawn(move || self.run(decoder))
            .expect("spawning the decoder thread"))
    }

    fn run(mut self, mut decoder: VideoDecoder) {
        let mut chain = ReferenceChain::default();
        let mut requests = KeyframeRequests::new(Duration::from_millis(250));
        let mut last_shown: Option<(u64, u64)> = None; // (seq, local time us)
        let mut freshness = Freshness::default();
        let mut picture_delay = PictureDelay::default();
        while !self.stop.load(Relaxed) {
            // The peer turned its camera off: the pause is not frozen video.
            if self.stats.peer_camera_off.load(Relaxed) {
                last_shown = None;
            }
            let frame = match self.input.recv_timeout(Duration::from_millis(100)) {
                Ok(frame) => frame,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if self.link_back.has_changed().unwrap_or(false) {
                // The first picture since the link came back: ask for a fresh start at once.
                self.link_back.mark_unchanged();
                freshness.on_link_back(now_us());
                self.stats.keyframes_requested.fetch_add(1, Relaxed);
                (self.request_keyframe)();
            }
            // The size an SPS announces is checked before the decoder allocates for it.
            if let Err(e) = check_access_unit(&frame.data) {
                (self.refuse)(e.to_string());
                break;
            }
            let decodable = match chain.admit(frame.group, frame.seq, frame.keyframe) {
                Verdict::Decode => match decoder.decode(&frame.data, frame.capture_us) {
                    Ok(picture) => picture,
                    Err(e) => {
                        tracing::debug!("{e}");
                        self.stats.decode_errors.fetch_add(1, Relaxed);
                        chain.break_chain();
                        None
                    }
                },
                Verdict::DropStale => continue,
                Verdict::DropBroken => None,
            };
            let Some(picture) = decodable else {
                tracing::trace!(group = frame.group, seq = frame.seq, "picture not shown: its reference is missing");
                if chain.broken && requests.should_send(Instant::now()) {
                    self.stats.keyframes_requested.fetch_add(1, Relaxed);
                    (self.request_keyframe)();
                }
                continue;
            };
            let captured_local = self.clock.lock().unwrap_or_else(|e| e.into_inner()).to_local_us(picture.capture_us);
            let now = now_us();
            if !freshness.should_show(now, (now as i64).saturating_sub(captured_local)) {
                continue;
            }
            let hold = picture_delay.hold(self.lip_sync.audio_delay_us(), captured_local, now);
            tracing::trace!(
                group = frame.group,
                seq = frame.seq,
                keyframe = frame.keyframe,
                age_ms = (now as i64).saturating_sub(captured_local) / 1000,
                hold_ms = hold.map_or(0, |hold| hold.as_millis()),
                "picture shown"
            );
            if let Some(hold) = hold {
                std::thread::sleep(hold);
            }
            last_shown = Some(self.measure(&picture, captured_local, frame.seq, last_shown));
            if let Some(writer) = &mut self.record
                && let Err(e) = writer.write(&picture)
            {
                eprintln!("chat: recording stopped: {e}");
                self.record = None;
            }
            self.output.put(Arc::new(picture));
        }
        if let Some(writer) = self.record.take()
            && let Err(e) = writer.finish()
        {
            eprintln!("chat: recording: {e}");
        }
    }

    /// Latency, PSNR, skipped and frozen frames, A/V offset for one picture about to be shown.
    fn measure(&self, picture: &VideoFrame, captured_local: i64, seq: u64, last: Option<(u64, u64)>) -> (u64, u64) {
        let now = now_us();
        let latency_ms = (now as i64).saturating_sub(captured_local) as f64 / 1000.0;
        if let Some(audio_us) = self.lip_sync.audio_delay_us() {
            self.stats.record_av_offset(latency_ms - audio_us as f64 / 1000.0);
        }
        let quality = if self.peer_size == Some((picture.width, picture.height)) {
            read_index(picture).filter(|index| index % PSNR_EVERY == 0).and_then(|index| {
                let original = pattern_frame(index, picture.width, picture.height, 0);
                psnr(&original.y, &picture.y)
            })
        } else {
            None
        };
        if let Some((last_seq, last_us)) = last {
            self.stats.frames_skipped.fetch_add(seq.saturating_sub(last_seq + 1), Relaxed);
            if let Some(fps) = self.peer_fps {
                let intervals = (now.saturating_sub(last_us) as f64 * f64::from(fps) / 1e6).round() as u64;
                self.stats.frozen_frames.fetch_add(intervals.saturating_sub(1), Relaxed);
            }
        }
        self.stats.record_shown(Some(latency_ms), quality);
        (seq, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_frames_need_their_predecessor() {
        let mut chain = ReferenceChain::default();
        assert_eq!(chain.admit(0, 5, false), Verdict::DropBroken, "no keyframe yet");
        assert_eq!(chain.admit(0, 6, true), Verdict::Decode);
        assert_eq!(chain.admit(0, 7, false), Verdict::Decode);
        assert_eq!(chain.admit(0, 9, false), Verdict::DropBroken, "frame 8 missing");
        assert_eq!(chain.admit(0, 10, false), Verdict::DropBroken, "still broken");
        assert_eq!(chain.admit(1, 11, true), Verdict::Decode, "a keyframe mends it");
        assert_eq!(chain.admit(0, 8, false), Verdict::DropStale, "older group");
        assert_eq!(chain.admit(1, 12, false), Verdict::Decode);
        chain.break_chain();
        assert_eq!(chain.admit(1, 13, false), Verdict::DropBroken);
    }

    #[test]
    fn keyframe_requests_are_rate_limited() {
        let mut requests = KeyframeRequests::new(Duration::from_millis(250));
        let t0 = Instant::now();
        assert!(requests.should_send(t0));
        assert!(!requests.should_send(t0 + Duration::from_millis(100)));
        assert!(requests.should_send(t0 + Duration::from_millis(260)));
    }
}
