//! Call figures: counters the pipeline stages bump, the once-a-second report (status line
//! on stderr, JSON line in `--stats-json`) and the summary at hang-up.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::histogram::Histogram;
use crate::media::audio::FRAME_US;
use crate::media::audio::echo_path::EchoPath;
use crate::media::audio::jitter::JitterCounters;

/// A/V offsets are signed; the histogram holds offset + this bias (offsets of ±1 s fit).
const AV_OFFSET_BIAS_MS: f64 = 1000.0;

/// Counters shared by the stages of one call.
#[derive(Debug)]
pub struct CallStats {
    started: Instant,
    pub frames_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Pictures the encoder made that the network could not take in time.
    pub frames_dropped_sending: AtomicU64,
    /// Pictures not encoded because the network had not taken the ones before (rate adaptation).
    pub frames_skipped_sending: AtomicU64,
    /// Pictures the encoder's rate control skipped (since the start; the encoder thread sets it).
    pub frames_skipped_by_encoder: AtomicU64,
    /// Pictures decoded and handed to the window.
    pub frames_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Keyframe requests this peer sent.
    pub keyframes_requested: AtomicU64,
    /// Pictures the peer sent that were never shown here (gaps in sequence numbers).
    pub frames_skipped: AtomicU64,
    /// Frame intervals in which the shown picture did not change because none arrived.
    pub frozen_frames: AtomicU64,
    pub audio_packets_sent: AtomicU64,
    pub audio_bytes_sent: AtomicU64,
    /// Audio packets the network could not take in time.
    pub audio_dropped_sending: AtomicU64,
    pub audio_packets_received: AtomicU64,
    pub audio_bytes_received: AtomicU64,
    pub audio_decode_errors: AtomicU64,
    /// The jitter buffer's counts and depth, as last reported by the playout thread.
    audio_buffer: Mutex<(JitterCounters, u64)>,
    /// What the encoder thread applied to the last picture it encoded.
    sending: Mutex<Option<Sending>>,
    /// The peer's switches, as it last said.
    pub peer_muted: AtomicBool,
    pub peer_camera_off: AtomicBool,
    /// Microseconds after `started` of the first frame sent / shown (0 = not yet).
    first_sent_us: AtomicU64,
    first_shown_us: AtomicU64,
    /// Microseconds after `started` at which the call stopped carrying media: either side
    /// hung up, or the link ended it (0 = still on).
    ended_us: AtomicU64,
    quality: Mutex<Quality>,
    /// The code both people can read to each other (QUIC calls).
    safety_code: Mutex<Option<String>>,
    /// What the rate controller estimates the path carries, kbit/s (0: not adapting).
    pub estimate_kbps: AtomicU64,
    /// How much of a frame interval a picture takes from capture to encoded, per cent,
    /// smoothed (0: not measured).
    pub cpu_usage_pct: AtomicU64,
    /// Nothing has come from the peer for a while: the link is down, the call waits.
    pub reconnecting: AtomicBool,
    /// Our sound datagrams carry the packet before them too (the path loses packets).
    pub audio_redundancy: AtomicBool,
    /// Whether the peer's sound comes back into the microphone (`None`: not cancelling).
    pub echo_path: Mutex<Option<EchoPath>>,
}

/// What holds the video below the most the user allows (`--bitrate`, `--size`, `--fps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    /// The network: the rate controller's target is below `--bitrate`.
    Link,
    /// This machine: pictures take too long from capture to encoded (`adapt::cpu_load`).
    Cpu,
}

/// The encoder's operating point: picture size, frame rate and bitrate it was told.
#[derive(Clone, Copy, Debug)]
struct Sending {
    width: u64,
    height: u64,
    fps: u64,
    target_kbps: u64,
    limit: Option<Limit>,
}

#[derive(Debug, Default)]
struct Quality {
    latency_call: Histogram,
    latency_window: Histogram,
    psnr_call: (f64, u64),
    psnr_window: (f64, u64),
    mouth_to_ear_call: Histogram,
    mouth_to_ear_window: Histogram,
    av_offset_call: Histogram,
    av_offset_window: Histogram,
}

impl CallStats {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            frames_dropped_sending: AtomicU64::new(0),
            frames_skipped_sending: AtomicU64::new(0),
            frames_skipped_by_encoder: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            keyframes_requested: AtomicU64::new(0),
            frames_skipped: AtomicU64::new(0),
            frozen_frames: AtomicU64::new(0),
            audio_packets_sent: AtomicU64::new(0),
            audio_bytes_sent: AtomicU64::new(0),
            audio_dropped_sending: AtomicU64::new(0),
            audio_packets_received: AtomicU64::new(0),
            audio_bytes_received: AtomicU64::new(0),
            audio_decode_errors: AtomicU64::new(0),
            audio_buffer: Mutex::new((JitterCounters::default(), 0)),
            sending: Mutex::new(None),
            peer_muted: AtomicBool::new(false),
            peer_camera_off: AtomicBool::new(false),
            first_sent_us: AtomicU64::new(0),
            first_shown_us: AtomicU64::new(0),
            ended_us: AtomicU64::new(0),
            quality: Mutex::new(Quality::default()),
            safety_code: Mutex::new(None),
            estimate_kbps: AtomicU64::new(0),
            cpu_usage_pct: AtomicU64::new(0),
            reconnecting: AtomicBool::new(false),
            audio_redundancy: AtomicBool::new(false),
            echo_path: Mutex::new(None),
        }
    }

    pub fn set_safety_code(&self, code: Option<String>) {
        *self.safety_code.lock().unwrap_or_else(|e| e.into_inner()) = code;
    }

    fn since_start_us(&self) -> u64 {
        (self.started.elapsed().as_micros() as u64).max(1)
    }

    /// A frame of `bytes` went out.
    pub fn record_sent(&self, bytes: usize) {
        self.frames_sent.fetch_add(1, Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Relaxed);
        let _ = self.first_sent_us.compare_exchange(0, self.since_start_us(), Relaxed, Relaxed);
    }

    /// A picture was decoded and is ready to show, `latency_ms` after capture (when known).
    pub fn record_shown(&self, latency_ms: Option<f64>, psnr_db: Option<f64>) {
        self.frames_received.fetch_add(1, Relaxed);
        let _ = self.first_shown_us.compare_exchange(0, self.since_start_us(), Relaxed, Relaxed);
        let mut q = self.quality.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ms) = latency_ms {
            q.latency_call.record(ms);
            q.latency_window.record(ms);
        }
        if let Some(db) = psnr_db {
            q.psnr_call.0 += db;
            q.psnr_call.1 += 1;
            q.psnr_window.0 += db;
            q.psnr_window.1 += 1;
        }
    }

    /// The call stops carrying media now (a hang-up, or the link ended it); the first
    /// call counts. The summary's rates end here, not after the hang-up's grace and the
    /// threads' winding down, which carry no pictures.
    pub fn media_ended(&self) {
        let _ = self.ended_us.compare_exchange(0, self.since_start_us(), Relaxed, Relaxed);
    }

    /// An audio datagram of `bytes` went out.
    pub fn record_audio_sent(&self, bytes: usize) {
        self.audio_packets_sent.fetch_add(1, Relaxed);
        self.audio_bytes_sent.fetch_add(bytes as u64, Relaxed);
    }

    /// An audio datagram of `bytes` came in.
    pub fn record_audio_received(&self, bytes: usize) {
        self.audio_packets_received.fetch_add(1, Relaxed);
        self.audio_bytes_received.fetch_add(bytes as u64, Relaxed);
    }

    /// A frame of the peer's sound will be heard `ms` after it was captured.
    pub fn record_mouth_to_ear(&self, ms: f64) {
        let mut q = self.quality.lock().unwrap_or_else(|e| e.into_inner());
        q.mouth_to_ear_call.record(ms);
        q.mouth_to_ear_window.record(ms);
    }

    /// A picture was shown `ms` after the sound captured with it (negative: before).
    pub fn record_av_offset(&self, ms: f64) {
        let mut q = self.quality.lock().unwrap_or_else(|e| e.into_inner());
        q.av_offset_call.record(ms + AV_OFFSET_BIAS_MS);
        q.av_offset_window.record(ms + AV_OFFSET_BIAS_MS);
    }

    /// The encoder encoded its last picture at `width` x `height`, held to `fps` frames a
    /// second and `target_kbps` kbit/s, by `limit` if anything.
    pub fn record_sending(&self, width: usize, height: usize, fps: u32, target_kbps: u32, limit: Option<Limit>) {
        let sending = Sending {
            width: width as u64,
            height: height as u64,
            fps: u64::from(fps),
            target_kbps: u64::from(target_kbps),
            limit,
        };
        *self.sending.lock().unwrap_or_else(|e| e.into_inner()) = Some(sending);
    }

    /// The jitter buffer's counts and how much sound is queued (ms) right now.
    pub fn set_audio_buffer(&self, counters: JitterCounters, buffered_ms: u64) {
        *self.audio_buffer.lock().unwrap_or_else(|e| e.into_inner()) = (counters, buffered_ms);
    }

    /// Milliseconds from the start of the call to the first picture shown.
    pub fn first_frame_ms(&self) -> Option<f64> {
        match self.first_shown_us.load(Relaxed) {
            0 => None,
            us => Some(us as f64 / 1000.0),
        }
    }
}

/// One line of `--stats-json`: a second of the call, or (with `summary`) all of it.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Report {
    pub summary: bool,
    /// Seconds since the call started.
    pub t_s: f64,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub fps_sent: f64,
    pub fps_received: f64,
    pub kbps_sent: f64,
    pub kbps_received: f64,
    /// The size this peer encodes its pictures at now (it follows the network), the frame
    /// rate and bitrate its encoder is held to (`fps_sent` and `kbps_sent` are what went
    /// out); `null` before the first picture.
    pub send_width: Option<u64>,
    pub send_height: Option<u64>,
    pub send_fps: Option<u64>,
    pub target_kbps: Option<u64>,
    /// What the path is estimated to carry (media included); `null` with `--no-adapt`.
    pub estimate_kbps: Option<u64>,
    /// What holds the video below `--bitrate`/`--size`/`--fps`: "link", "cpu", or `null`.
    pub limited_by: Option<Limit>,
    /// How much of a frame interval a picture takes from capture to encoded, per cent,
    /// smoothed; above 85 this machine cannot keep up. `null` with `--no-adapt`.
    pub cpu_usage_pct: Option<u64>,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p95: Option<f64>,
    pub psnr_db: Option<f64>,
    pub rtt_ms: Option<f64>,
    pub keyframes_requested: u64,
    pub decode_errors: u64,
    pub frozen_frames: u64,
    pub frames_skipped: u64,
    pub frames_dropped_sending: u64,
    /// Pictures not encoded because the network was behind.
    pub frames_skipped_sending: u64,
    /// Pictures the encoder's rate control skipped.
    pub frames_skipped_by_encoder: u64,
    pub first_frame_ms: Option<f64>,
    /// Audio bit rate while sound flows (datagrams, headers included).
    pub audio_kbps_sent: f64,
    pub audio_kbps_received: f64,
    pub audio_packets_received: u64,
    /// Sound waiting to be played: jitter buffer plus the sink's queue.
    pub audio_buffer_ms: u64,
    /// Frames the decoder made up for lost, late or missing packets.
    pub audio_concealed: u64,
    /// Frames with nothing to play while sound was flowing.
    pub audio_underruns: u64,
    /// Packets that came after their turn.
    pub audio_late: u64,
    /// Frames played from the copy in the next datagram, their own packet lost.
    pub audio_recovered: u64,
    /// Our sound goes with a copy of each packet in the next datagram (the path loses
    /// packets).
    pub audio_redundancy: bool,
    /// Audio packets this peer made that the network could not take in time.
    pub audio_dropped_sending: u64,
    /// Audio packets from the peer that were not Opus this decoder could use (concealed).
    pub audio_decode_errors: u64,
    /// Capture to speaker, for the peer's sound.
    pub mouth_to_ear_ms_p50: Option<f64>,
    pub mouth_to_ear_ms_p95: Option<f64>,
    /// Picture shown minus sound heard, for the same capture time (positive: video late).
    pub av_offset_ms_p50: Option<f64>,
    pub av_offset_ms_p95: Option<f64>,
    pub peer_muted: bool,
    pub peer_camera_off: bool,
    /// Nothing came from the peer for the last moments: the call waits for the link.
    pub reconnecting: bool,
    /// Echo cancelling's view of the room: "unknown", "present" (cancelling) or "absent"
    /// (the microphone passes untouched); `null` when it is off.
    pub echo_path: Option<&'static str>,
    /// The safety code both ends should show (QUIC calls; `null` in raw mode).
    pub safety_code: Option<String>,
}

impl Report {
    /// The short human form: the status line and the window title.
    pub fn status_line(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}{unit}"));
        let mut line = if self.reconnecting { "reconnecting… | ".to_string() } else { String::new() };
        line += &format!(
            "sent {:.1} fps {:.0} kbps | recv {:.1} fps {:.0} kbps | rtt {} | latency p50 {} p95 {}",
            self.fps_sent,
            self.kbps_sent,
            self.fps_received,
            self.kbps_received,
            opt(self.rtt_ms, " ms"),
            opt(self.latency_ms_p50, " ms"),
            opt(self.latency_ms_p95, " ms"),
        );
        if let (Some(w), Some(h), Some(fps), Some(kbps)) =
            (self.send_width, self.send_height, self.send_fps, self.target_kbps)
        {
            line.push_str(&format!(" | sending {w}x{h}@{fps} {kbps} kbps"));
            if self.limited_by == Some(Limit::Cpu) {
                line.push_str(", held down by the CPU");
            }
            if let Some(link) = self.estimate_kbps {
                line.push_str(&format!(" (link ~{link} kbps)"));
            }
        }
        if let Some(db) = self.psnr_db {
            line.push_str(&format!(" | psnr {db:.1} dB"));
        }
        if self.audio_packets_received > 0 {
            line.push_str(&format!(
                " | audio {:.0} kbps m2e {} buf {} ms lost {}{} | a/v {}",
                self.audio_kbps_received,
                opt(self.mouth_to_ear_ms_p50, " ms"),
                self.audio_buffer_ms,
                self.audio_concealed,
                if self.audio_recovered > 0 { format!(" saved {}", self.audio_recovered) } else { String::new() },
                self.av_offset_ms_p50.map_or_else(|| "-".to_string(), |v| format!("{v:+.0} ms")),
            ));
        }
        if self.peer_muted {
            line.push_str(" | peer muted");
        }
        if self.peer_camera_off {
            line.push_str(" | peer camera off");
        }
        line
    }
}

/// Turns the counters into reports: one per `tick`, a summary at the end.
#[derive(Debug)]
pub struct Reporter {
    last_at: Instant,
    last_frames_sent: u64,
    last_frames_received: u64,
    last_bytes_sent: u64,
    last_bytes_received: u64,
    last_audio: [u64; 4],
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 { 0.0 } else { count as f64 / secs }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// kbit/s of `bytes` carried by `packets` 10 ms audio packets: the stream's own rate,
/// whatever the wall clock did meanwhile.
fn audio_kbps(bytes: u64, packets: u64) -> f64 {
    if packets == 0 { 0.0 } else { round1(bytes as f64 * 8.0 / (packets * FRAME_US) as f64 * 1000.0) }
}

fn av_offset(histogram: &Histogram, q: f64) -> Option<f64> {
    histogram.quantile(q).map(|v| round1(v - AV_OFFSET_BIAS_MS))
}

/// [packets sent, bytes sent, packets received, bytes received] of audio so far.
fn audio_totals(stats: &CallStats) -> [u64; 4] {
    [
        stats.audio_packets_sent.load(Relaxed),
        stats.audio_bytes_sent.load(Relaxed),
        stats.audio_packets_received.load(Relaxed),
        stats.audio_bytes_received.load(Relaxed),
    ]
}

impl Reporter {
    pub fn new(stats: &CallStats) -> Self {
        Self {
            last_at: stats.started,
            last_frames_sent: 0,
            last_frames_received: 0,
            last_bytes_sent: 0,
            last_bytes_received: 0,
            last_audio: [0; 4],
        }
    }

    fn counters(stats: &CallStats, summary: bool, rtt: Option<Duration>) -> Report {
        let buffer = *stats.audio_buffer.lock().unwrap_or_else(|e| e.into_inner());
        let sending = *stats.sending.lock().unwrap_or_else(|e| e.into_inner());
        Report {
            summary,
            t_s: round2(stats.started.elapsed().as_secs_f64()),
            frames_sent: stats.frames_sent.load(Relaxed),
            frames_received: stats.frames_received.load(Relaxed),
            send_width: sending.map(|s| s.width),
            send_height: sending.map(|s| s.height),
            send_fps: sending.map(|s| s.fps),
            target_kbps: sending.map(|s| s.target_kbps),
            estimate_kbps: Some(stats.estimate_kbps.load(Relaxed)).filter(|&kbps| kbps > 0),
            limited_by: sending.and_then(|s| s.limit),
            cpu_usage_pct: Some(stats.cpu_usage_pct.load(Relaxed)).filter(|&pct| pct > 0),
            rtt_ms: rtt.map(|d| round2(d.as_secs_f64() * 1000.0)),
            keyframes_requested: stats.keyframes_requested.load(Relaxed),
            decode_errors: stats.decode_errors.load(Relaxed),
            frozen_frames: stats.frozen_frames.load(Relaxed),
            frames_skipped: stats.frames_skipped.load(Relaxed),
            frames_dropped_sending: stats.frames_dropped_sending.load(Relaxed),
            frames_skipped_sending: stats.frames_skipped_sending.load(Relaxed),
            frames_skipped_by_encoder: stats.frames_skipped_by_encoder.load(Relaxed),
            first_frame_ms: stats.first_frame_ms().map(round1),
            safety_code: stats.safety_code.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            audio_packets_received: stats.audio_packets_received.load(Relaxed),
            audio_buffer_ms: buffer.1,
            audio_concealed: buffer.0.concealed,
            audio_underruns: buffer.0.underruns,
            audio_late: buffer.0.late,
            audio_recovered: buffer.0.recovered,
            audio_redundancy: stats.audio_redundancy.load(Relaxed),
            audio_dropped_sending: stats.audio_dropped_sending.load(Relaxed),
            audio_decode_errors: stats.audio_decode_errors.load(Relaxed),
            peer_muted: stats.peer_muted.load(Relaxed),
            peer_camera_off: stats.peer_camera_off.load(Relaxed),
            reconnecting: stats.reconnecting.load(Relaxed),
            echo_path: stats.echo_path.lock().unwrap_or_else(|e| e.into_inner()).map(EchoPath::name),
            ..Report::default()
        }
    }

    /// The figures for the time since the last tick.
    pub fn tick(&mut self, stats: &CallStats, rtt: Option<Duration>) -> Report {
        let now = Instant::now();
        let elapsed = now - self.last_at;
        let mut report = Self::counters(stats, false, rtt);
        let (bytes_sent, bytes_received) = (stats.bytes_sent.load(Relaxed), stats.bytes_received.load(Relaxed));
        report.fps_sent = round1(rate(report.frames_sent - self.last_frames_sent, elapsed));
        report.fps_received = round1(rate(report.frames_received - self.last_frames_received, elapsed));
        report.kbps_sent = round1(rate(bytes_sent - self.last_bytes_sent, elapsed) * 8.0 / 1000.0);
        report.kbps_received = round1(rate(bytes_received - self.last_bytes_received, elapsed) * 8.0 / 1000.0);
        let mut q = stats.quality.lock().unwrap_or_else(|e| e.into_inner());
        report.latency_ms_p50 = q.latency_window.quantile(0.5);
        report.latency_ms_p95 = q.latency_window.quantile(0.95);
        report.psnr_db = (q.psnr_window.1 > 0).then(|| round2(q.psnr_window.0 / q.psnr_window.1 as f64));
        report.mouth_to_ear_ms_p50 = q.mouth_to_ear_window.quantile(0.5);
        report.mouth_to_ear_ms_p95 = q.mouth_to_ear_window.quantile(0.95);
        report.av_offset_ms_p50 = av_offset(&q.av_offset_window, 0.5);
        report.av_offset_ms_p95 = av_offset(&q.av_offset_window, 0.95);
        q.latency_window.clear();
        q.psnr_window = (0.0, 0);
        q.mouth_to_ear_window.clear();
        q.av_offset_window.clear();
        drop(q);
        let audio = audio_totals(stats);
        report.audio_kbps_sent = audio_kbps(audio[1] - self.last_audio[1], audio[0] - self.last_audio[0]);
        report.audio_kbps_received = audio_kbps(audio[3] - self.last_audio[3], audio[2] - self.last_audio[2]);
        self.last_audio = audio;
        self.last_at = now;
        self.last_frames_sent = report.frames_sent;
        self.last_frames_received = report.frames_received;
        self.last_bytes_sent = bytes_sent;
        self.last_bytes_received = bytes_received;
        report
    }

    /// The whole call: rates over the time from the first frame each way to the end of
    /// the media (`CallStats::media_ended`; now, if it has not been said).
    pub fn summary(stats: &CallStats, rtt: Option<Duration>) -> Report {
        let mut report = Self::counters(stats, true, rtt);
        let end_us = match stats.ended_us.load(Relaxed) {
            0 => stats.since_start_us(),
            ended => ended,
        };
        let span = |first_us: &AtomicU64| match first_us.load(Relaxed) {
            0 => Duration::ZERO,
            first => Duration::from_micros(end_us.saturating_sub(first)),
        };
        let (sent_span, shown_span) = (span(&stats.first_sent_us), span(&stats.first_shown_us));
        // n frames over a span that starts at the first of them: n - 1 intervals.
        report.fps_sent = round1(rate(report.frames_sent.saturating_sub(1), sent_span));
        report.fps_received = round1(rate(report.frames_received.saturating_sub(1), shown_span));
        report.kbps_sent = round1(rate(stats.bytes_sent.load(Relaxed), sent_span) * 8.0 / 1000.0);
        report.kbps_received = round1(rate(stats.bytes_received.load(Relaxed), shown_span) * 8.0 / 1000.0);
        let q = stats.quality.lock().unwrap_or_else(|e| e.into_inner());
        report.latency_ms_p50 = q.latency_call.quantile(0.5);
        report.latency_ms_p95 = q.latency_call.quantile(0.95);
        report.psnr_db = (q.psnr_call.1 > 0).then(|| round2(q.psnr_call.0 / q.psnr_call.1 as f64));
        report.mouth_to_ear_ms_p50 = q.mouth_to_ear_call.quantile(0.5);
        report.mouth_to_ear_ms_p95 = q.mouth_to_ear_call.quantile(0.95);
        report.av_offset_ms_p50 = av_offset(&q.av_offset_call, 0.5);
        report.av_offset_ms_p95 = av_offset(&q.av_offset_call, 0.95);
        let audio = audio_totals(stats);
        report.audio_kbps_sent = audio_kbps(audio[1], audio[0]);
        report.audio_kbps_received = audio_kbps(audio[3], audio[2]);
        report
    }
}

/// The `--stats-json` file: one JSON object per line.
#[derive(Debug)]
pub struct JsonLines {
    out: std::io::BufWriter<std::fs::File>,
}

impl JsonLines {
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self { out: std::io::BufWriter::new(std::fs::File::create(path)?) })
    }

    /// Writes one object as one line: a second's figures, the summary, or an event.
    pub fn write<T: serde::Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_report_the_last_second_and_the_summary_the_call() {
        let stats = CallStats::new(Instant::now() - Duration::from_secs(2));
        let mut reporter = Reporter::new(&stats);
        for i in 0..10 {
            stats.record_sent(1000);
            stats.record_shown(Some(f64::from(i)), Some(40.0));
        }
        let report = reporter.tick(&stats, Some(Duration::from_micros(1500)));
        assert_eq!((report.frames_sent, report.frames_received), (10, 10));
        assert!(report.fps_sent > 4.0 && report.fps_sent < 5.1, "{}", report.fps_sent);
        assert_eq!(report.rtt_ms, Some(1.5));
        assert_eq!(report.psnr_db, Some(40.0));
        assert!(report.latency_ms_p50.unwrap() >= 4.0 && report.latency_ms_p50.unwrap() <= 5.0);
        // The window is cleared by a tick; the call's figures are not.
        let next = reporter.tick(&stats, None);
        assert_eq!((next.latency_ms_p50, next.psnr_db, next.fps_received), (None, None, 0.0));
        let summary = Reporter::summary(&stats, None);
        assert!(summary.summary);
        assert_eq!(summary.psnr_db, Some(40.0));
        assert!(summary.first_frame_ms.unwrap() >= 2000.0);
        let json = serde_json::to_string(&summary).unwrap();
        for key in [
            "\"summary\":true",
            "\"fps_received\"",
            "\"latency_ms_p95\"",
            "\"psnr_db\"",
            "\"rtt_ms\":null",
            "\"send_width\":null",
        ] {
            assert!(json.contains(key), "{key} in {json}");
        }
        assert!(summary.status_line().contains("psnr 40.0 dB"));
        assert!(!summary.status_line().contains("sending"), "nothing encoded, no operating point");
        assert!(!summary.status_line().contains("audio"), "no sound, no audio figures");
    }

    #[test]
    fn the_summary_rates_end_when_the_media_did_not_when_the_threads_wound_down() {
        let stats = CallStats::new(Instant::now());
        for _ in 0..3 {
            stats.record_sent(1000);
            stats.record_shown(None, None);
            std::thread::sleep(Duration::from_millis(10));
        }
        stats.media_ended();
        let at_hang_up = Reporter::summary(&stats, None);
        assert!(at_hang_up.fps_received > 0.0);
        std::thread::sleep(Duration::from_millis(30));
        stats.media_ended();
        let wound_down = Reporter::summary(&stats, None);
        assert_eq!(
            (wound_down.fps_received, wound_down.fps_sent, wound_down.kbps_sent),
            (at_hang_up.fps_received, at_hang_up.fps_sent, at_hang_up.kbps_sent),
            "the time after the hang-up carries no pictures"
        );
    }

    #[test]
    fn the_encoders_operating_point_is_reported_as_last_set() {
        let stats = CallStats::new(Instant::now());
        let mut reporter = Reporter::new(&stats);
        stats.record_sending(1280, 720, 30, 1935, None);
        stats.record_sending(640, 360, 15, 300, Some(Limit::Link));
        let report = reporter.tick(&stats, None);
        assert_eq!(
            (report.send_width, report.send_height, report.send_fps, report.target_kbps),
            (Some(640), Some(360), Some(15), Some(300))
        );
        assert!(report.status_line().contains("sending 640x360@15 300 kbps"), "{}", report.status_line());
        assert!(!report.status_line().contains("reconnecting"));
        stats.estimate_kbps.store(450, Relaxed);
        stats.reconnecting.store(true, Relaxed);
        let report = reporter.tick(&stats, None);
        assert!(report.status_line().starts_with("reconnecting… | "), "{}", report.status_line());
        assert!(
            report.status_line().contains("sending 640x360@15 300 kbps (link ~450 kbps)"),
            "{}",
            report.status_line()
        );
        let json = serde_json::to_string(&Reporter::summary(&stats, None)).unwrap();
        assert!(json.contains("\"send_width\":640,\"send_height\":360,\"send_fps\":15,\"target_kbps\":300"), "{json}");
    }

    #[test]
    fn audio_figures_are_reported() {
        let stats = CallStats::new(Instant::now());
        let mut reporter = Reporter::new(&stats);
        for _ in 0..100 {
            stats.record_audio_received(57);
            stats.record_mouth_to_ear(40.0);
        }
        stats.record_av_offset(-12.0);
        stats.set_audio_buffer(JitterCounters { concealed: 3, underruns: 1, late: 2, dropped: 0, recovered: 0 }, 25);
        stats.peer_muted.store(true, Relaxed);
        stats.audio_decode_errors.fetch_add(1, Relaxed);
        let report = reporter.tick(&stats, None);
        assert_eq!((report.audio_decode_errors, report.audio_dropped_sending), (1, 0));
        // 57 bytes every 10 ms is 45.6 kbit/s.
        assert_eq!(report.audio_kbps_received, 45.6);
        assert_eq!(
            (report.audio_concealed, report.audio_underruns, report.audio_late, report.audio_buffer_ms),
            (3, 1, 2, 25)
        );
        assert!((report.mouth_to_ear_ms_p50.unwrap() - 40.0).abs() < 0.5);
        assert!((report.av_offset_ms_p50.unwrap() + 12.0).abs() < 0.5, "{:?}", report.av_offset_ms_p50);
        let line = report.status_line();
        assert!(line.contains("audio 46 kbps") && line.contains("a/v -12 ms") && line.contains("peer muted"), "{line}");
        assert!(line.contains("lost 3 |"), "{line}");
        // Frames played from copies show beside those lost.
        stats.set_audio_buffer(JitterCounters { concealed: 3, underruns: 1, late: 2, dropped: 0, recovered: 9 }, 25);
        assert!(reporter.tick(&stats, None).status_line().contains("lost 3 saved 9 |"));
        let summary = Reporter::summary(&stats, None);
        assert_eq!(summary.audio_kbps_received, 45.6);
    }
}
