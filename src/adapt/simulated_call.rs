//! A call in simulated time (test support): a sender encoding at the policy's target, a
//! model of quinn's transport, the model link, a receive meter on the far side whose
//! reports come back over the link, and the rate controller (estimator, policy, probes)
//! closing the loop.
//!
//! The transport is quinn with BBR in its steady state, simplified: at most twice the
//! bandwidth-delay product in flight, the bandwidth being the link's best rate over the
//! last ten round trips (BBR's max filter); audio datagrams go first, then the video
//! stream. A lost packet is declared lost when a later one is acknowledged, then sent again
//! (video) or forgotten (audio); with nothing acknowledged for a probe timeout, one packet
//! goes anyway and the timeout doubles. Frames travel as one ordered stream, so a
//! retransmission holds back the frames behind it, as on QUIC. The sender's backlog waits
//! in its send queue, where the send window sees it; while the link holds the call down,
//! the video packets leave that queue at the pacing rate (`video_pacer`). A probe cluster's
//! padding goes as datagrams, like the sound, and the receiver's `ProbeMeter` answers it
//! over the way back. The sound plays through the receiver's jitter buffer (`JitterBuffer`,
//! the one the call uses), a frame every 10 ms, so the trace counts what a listener would
//! hear concealed. The encoder's rate control pays a keyframe back by skipping the
//! pictures it overspent (openh264's frame skip, as the encoder thread configures it).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt::Write;

use super::controller::RateController;
use super::estimator::TransportStats;
use super::model_link::{Delivery, LinkConfig, ModelLink, SeededDraws};
use super::policy::{PolicyConfig, Target};
use super::probe::{ProbeResult, ProbeSent};
use super::probe_meter::ProbeMeter;
use super::receive_meter::{FrameArrival, ReceiveMeter};
use super::report::ReceiverReport;
use super::video_pacer::VideoPacer;
use super::{AUDIO_KBPS, REPORT_INTERVAL_US};
use crate::media::audio::jitter::JitterBuffer;
use crate::net::wire::{FRAME_HEADER_BYTES, PROBE_HEADER_BYTES};

const MS: u64 = 1_000;
/// Largest packet payload.
const PACKET_BYTES: u32 = 1_200;
/// An audio datagram every 10 ms, sized so audio takes `AUDIO_KBPS`.
const AUDIO_EVERY_US: u64 = 10 * MS;
const AUDIO_PACKET_BYTES: u32 = AUDIO_KBPS * 10 / 8;
/// The receiver's speaker asks for a frame this long after each packet's capture tick, so
/// that the two clocks' 10 ms ticks do not coincide.
const PLAYOUT_PHASE_US: u64 = 5 * MS;
/// A probe sent at a probe timeout when nothing else waits (quinn sends a PING).
const PROBE_BYTES: u32 = 30;
const CAMERA_FPS: u32 = 30;
const MAX_WIDTH: u32 = 1280;
const MAX_HEIGHT: u32 = 720;
/// A keyframe is this many times a predicted picture.
const KEYFRAME_FACTOR: f64 = 3.0;
/// The sender's safety-net keyframe interval.
const KEYFRAME_EVERY_US: u64 = 10_000_000;
/// Pictures vary by up to this share around their budget.
const PICTURE_SIZE_SPREAD: f64 = 0.1;
/// The receiver's clock runs this far from the sender's: only differences may matter.
const RECEIVER_CLOCK_OFFSET_US: u64 = 7 * 3_600_000_000;
/// quinn's acknowledgement delay allowance, part of the probe timeout.
const MAX_ACK_DELAY_US: u64 = 25 * MS;

/// One call to simulate.
#[derive(Debug, Clone)]
pub struct CallConfig {
    pub link: LinkConfig,
    /// The user's video bitrate (`--bitrate`), kbit/s.
    pub ceiling_kbps: u32,
    pub duration_us: u64,
    /// Seed of the pictures' size draws.
    pub seed: u64,
    /// Whether pictures are paced (`video_pacer`), as the call does.
    pub paced: bool,
    /// Whether the sender probes (`probe`), as the call does.
    pub probing: bool,
}

impl CallConfig {
    /// A 720p30 call at 1 900 kbit/s (about the default for that size), paced and probing.
    pub fn hd(link: LinkConfig, duration_s: u64) -> Self {
        Self { link, ceiling_kbps: 1_900, duration_us: duration_s * 1_000_000, seed: 3, paced: true, probing: true }
    }
}

/// The state of the call every 100 ms.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at_us: u64,
    pub link_kbps: u32,
    pub estimate_kbps: u32,
    pub target: Target,
    /// The worst delay beyond the path's own (propagation and the frame's own
    /// serialization) among the frames delivered in the last 100 ms: time spent queued
    /// at the sender or the bottleneck, or held back by a retransmission.
    pub queue_delay_ms: Option<u64>,
    /// The same for the sound datagrams delivered in the last 100 ms.
    pub audio_queue_delay_ms: Option<u64>,
    /// Sound frames the jitter buffer concealed since the call started.
    pub sound_concealed: u64,
}

/// What a simulated call did.
#[derive(Debug, Default)]
pub struct CallTrace {
    pub samples: Vec<Sample>,
    /// Pictures the send window skipped at the encoder input.
    pub skipped_pictures: u64,
    /// Pictures the encoder's rate control skipped to pay a keyframe back.
    pub rate_control_skips: u64,
    pub keyframes: u64,
    pub frames_delivered: u64,
    /// Sound frames the speaker asked for, and of those the jitter buffer concealed.
    pub sound_frames: u64,
    pub sound_concealed: u64,
}

impl CallTrace {
    /// The samples taken in `[from_s, to_s)`.
    pub fn between(&self, from_s: f64, to_s: f64) -> impl Iterator<Item = &Sample> {
        let (from_us, to_us) = ((from_s * 1e6) as u64, (to_s * 1e6) as u64);
        self.samples.iter().filter(move |sample| (from_us..to_us).contains(&sample.at_us))
    }

    /// The target at `at_s`.
    pub fn target_at(&self, at_s: f64) -> Target {
        let at_us = (at_s * 1e6) as u64;
        self.samples.iter().take_while(|sample| sample.at_us <= at_us).last().expect("a sample").target
    }

    /// The worst queueing delay over `[from_s, to_s)`, ms.
    pub fn max_queue_delay_ms(&self, from_s: f64, to_s: f64) -> u64 {
        self.between(from_s, to_s).filter_map(|sample| sample.queue_delay_ms).max().unwrap_or(0)
    }

    /// The share of sound frames concealed over `[from_s, to_s)`, in tenths of a percent.
    pub fn sound_concealed_permille(&self, from_s: f64, to_s: f64) -> u64 {
        let concealed_by = |at_s: f64| {
            let at_us = (at_s * 1e6) as u64;
            self.samples.iter().take_while(|sample| sample.at_us < at_us).last().map_or(0, |s| s.sound_concealed)
        };
        let frames = ((to_s - from_s) * 100.0) as u64;
        (concealed_by(to_s) - concealed_by(from_s)) * 1000 / frames.max(1)
    }

    /// The worst queueing delay of sound over `[from_s, to_s)`, ms.
    pub fn max_audio_queue_delay_ms(&self, from_s: f64, to_s: f64) -> u64 {
        self.between(from_s, to_s).filter_map(|sample| sample.audio_queue_delay_ms).max().unwrap_or(0)
    }

    /// A table, one line a second: link rate, estimate, target, worst queueing delay of
    /// pictures and of sound; and what became of the pictures.
    pub fn per_second(&self) -> String {
        let mut table =
            String::from("   t  link kbps  estimate  video kbps       size  queue ms  sound ms  concealed\n");
        let mut concealed_before = 0;
        for second in self.samples.chunks(10) {
            let last = second.last().expect("a chunk has samples");
            let worst = |delay: fn(&Sample) -> Option<u64>| {
                second.iter().filter_map(delay).max().map_or("-".into(), |ms| ms.to_string())
            };
            let _ = writeln!(
                table,
                "{:>4}  {:>9}  {:>8}  {:>10}  {:>9}  {:>8}  {:>8}  {:>9}",
                last.at_us / 1_000_000,
                last.link_kbps,
                last.estimate_kbps,
                last.target.video_kbps,
                format!("{}p{}", last.target.height, last.target.fps),
                worst(|sample| sample.queue_delay_ms),
                worst(|sample| sample.audio_queue_delay_ms),
                last.sound_concealed - concealed_before,
            );
            concealed_before = last.sound_concealed;
        }
        let _ = writeln!(
            table,
            "pictures: {} delivered, {} keyframes; skipped {} by the send window, {} by rate control; \
             sound: {} of {} frames concealed",
            self.frames_delivered,
            self.keyframes,
            self.skipped_pictures,
            self.rate_control_skips,
            self.sound_concealed,
            self.sound_frames
        );
        table
    }
}

/// Runs a call and returns what it did.
pub fn simulate(config: CallConfig) -> CallTrace {
    let mut call = Call::new(config);
    call.run();
    call.trace.sound_concealed = call.jitter.counters().concealed;
    call.trace
}

/// What a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carries {
    /// Part of the video frame with this number.
    Frame(u64),
    /// The sound packet with this sequence number.
    Audio(u64),
    /// quinn's probe at a probe timeout.
    Probe,
    /// Datagram `index` of `count` in probe cluster `cluster` (`adapt::probe`).
    Padding { cluster: u16, index: u8, count: u8 },
}

/// A packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packet {
    carries: Carries,
    bytes: u32,
    /// When it was queued to send.
    queued_us: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum EventKind {
    /// A packet reaches the receiver.
    Arrive(Packet),
    /// The sender learns that packet `number`, sent at `sent_us`, arrived.
    Ack { number: u64, sent_us: u64, bytes: u32 },
    /// A receiver report reaches the sender.
    Report(Vec<u8>),
    /// The receiver's measure of a probe cluster reaches the sender.
    ProbeResult(ProbeResult),
}

#[derive(Debug, PartialEq, Eq)]
struct Event {
    at_us: u64,
    order: u64,
    kind: EventKind,
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_us, self.order).cmp(&(other.at_us, other.order))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A frame on its way: packets still missing, size, capture time.
#[derive(Debug)]
struct Assembly {
    missing: u32,
    bytes: u32,
    capture_us: u64,
}

struct Call {
    config: CallConfig,
    link: ModelLink,
    events: BinaryHeap<Reverse<Event>>,
    next_event_order: u64,
    trace: CallTrace,
    draws: SeededDraws,
    // Sender.
    controller: RateController,
    audio_queue: VecDeque<Packet>,
    /// Padding datagrams of the probe cluster under way, each with when it is due.
    padding_queue: VecDeque<(u64, Packet)>,
    /// (time, bytes sent by then) at the cluster's first datagram.
    padding_first: Option<(u64, u64)>,
    video_queue: VecDeque<Packet>,
    pacer: VideoPacer,
    video_queued_bytes: u64,
    next_frame_seq: u64,
    /// Bytes the encoder spent beyond its budget, paid back by skipping pictures.
    encoder_debt_bytes: f64,
    last_keyframe_us: Option<u64>,
    last_size: (u32, u32),
    // Transport.
    in_flight_bytes: u64,
    next_packet_number: u64,
    /// Packets the link dropped, not yet declared lost (in sending order).
    undeclared_losses: VecDeque<(u64, Packet)>,
    smoothed_rtt_us: u64,
    rtt_variation_us: u64,
    min_rtt_us: u64,
    lost_packets: u64,
    sent_packets: u64,
    sent_bytes: u64,
    probe_timer_from_us: u64,
    probes_in_a_row: u32,
    // Receiver.
    meter: ReceiveMeter,
    probe_meter: ProbeMeter,
    received_bytes: u64,
    assemblies: BTreeMap<u64, Assembly>,
    next_delivery_seq: u64,
    worst_queue_delay_ms: Option<u64>,
    worst_audio_queue_delay_ms: Option<u64>,
    jitter: JitterBuffer,
}

impl Call {
    fn new(config: CallConfig) -> Self {
        let controller = RateController::new(PolicyConfig {
            ceiling_kbps: config.ceiling_kbps,
            max_width: MAX_WIDTH,
            max_height: MAX_HEIGHT,
            camera_fps: CAMERA_FPS,
        });
        let min_rtt_us = 2 * config.link.one_way_delay_us;
        Self {
            link: ModelLink::new(config.link.clone()),
            draws: SeededDraws(config.seed),
            config,
            events: BinaryHeap::new(),
            next_event_order: 0,
            trace: CallTrace::default(),
            controller,
            audio_queue: VecDeque::new(),
            padding_queue: VecDeque::new(),
            padding_first: None,
            video_queue: VecDeque::new(),
            pacer: VideoPacer::default(),
            video_queued_bytes: 0,
            next_frame_seq: 0,
            encoder_debt_bytes: 0.0,
            last_keyframe_us: None,
            last_size: (0, 0),
            in_flight_bytes: 0,
            next_packet_number: 0,
            undeclared_losses: VecDeque::new(),
            smoothed_rtt_us: min_rtt_us,
            rtt_variation_us: min_rtt_us / 2,
            min_rtt_us,
            lost_packets: 0,
            sent_packets: 0,
            sent_bytes: 0,
            probe_timer_from_us: 0,
            probes_in_a_row: 0,
            meter: ReceiveMeter::new(),
            probe_meter: ProbeMeter::default(),
            received_bytes: 0,
            assemblies: BTreeMap::new(),
            next_delivery_seq: 0,
            worst_queue_delay_ms: None,
            worst_audio_queue_delay_ms: None,
            jitter: JitterBuffer::new(),
        }
    }

    fn run(&mut self) {
        let mut camera_frame = 0u64;
        for now_us in (0..self.config.duration_us).step_by(MS as usize) {
            self.handle_events_until(now_us);
            if now_us % AUDIO_EVERY_US == 0 {
                self.audio_queue.push_back(Packet {
                    carries: Carries::Audio(now_us / AUDIO_EVERY_US),
                    bytes: AUDIO_PACKET_BYTES,
                    queued_us: now_us,
                });
            }
            while camera_frame * 1_000_000 / u64::from(CAMERA_FPS) <= now_us {
                self.capture(camera_frame);
                camera_frame += 1;
            }
            if now_us % REPORT_INTERVAL_US == 0 {
                self.send_report(now_us);
                self.read_transport_stats(now_us);
                self.maybe_probe(now_us);
            }
            self.transmit(now_us);
            if now_us % AUDIO_EVERY_US == PLAYOUT_PHASE_US {
                self.play_sound_frame(now_us);
            }
            if now_us % REPORT_INTERVAL_US == 0 {
                self.take_sample(now_us);
            }
        }
    }

    fn schedule(&mut self, at_us: u64, kind: EventKind) {
        self.events.push(Reverse(Event { at_us, order: self.next_event_order, kind }));
        self.next_event_order += 1;
    }

    fn handle_events_until(&mut self, now_us: u64) {
        while self.events.peek().is_some_and(|Reverse(event)| event.at_us <= now_us) {
            let Reverse(event) = self.events.pop().expect("peeked");
            match event.kind {
                EventKind::Arrive(packet) => self.arrive(event.at_us, packet),
                EventKind::Ack { number, sent_us, bytes } => self.acknowledge(event.at_us, number, sent_us, bytes),
                EventKind::Report(bytes) => {
                    let report = ReceiverReport::decode(&bytes).expect("our own report decodes");
                    self.controller.on_report(event.at_us, &report);
                }
                EventKind::ProbeResult(result) => {
                    self.controller.on_probe_result(event.at_us, result);
                    self.maybe_probe(event.at_us);
                }
            }
        }
    }

    // Sender.

    fn capture(&mut self, camera_frame: u64) {
        let capture_us = camera_frame * 1_000_000 / u64::from(CAMERA_FPS);
        let target = self.controller.target();
        let taken = |frame: u64| frame * u64::from(target.fps) / u64::from(CAMERA_FPS);
        if camera_frame > 0 && taken(camera_frame) == taken(camera_frame - 1) {
            return;
        }
        // The writer waits while quinn's window is full, so the encoder finds its output full.
        let window = self.controller.send_window_bytes();
        if self.video_queued_bytes + self.in_flight_bytes > window {
            self.trace.skipped_pictures += 1;
            return;
        }
        let budget_bytes = f64::from(target.video_kbps) * 1000.0 / 8.0 / f64::from(target.fps);
        let keyframe = self.last_size != (target.width, target.height)
            || self.last_keyframe_us.is_none_or(|at| capture_us >= at + KEYFRAME_EVERY_US);
        if !keyframe && self.encoder_debt_bytes >= budget_bytes {
            self.encoder_debt_bytes -= budget_bytes;
            self.trace.rate_control_skips += 1;
            return;
        }
        if keyframe {
            self.last_keyframe_us = Some(capture_us);
            self.last_size = (target.width, target.height);
            self.trace.keyframes += 1;
        }
        let spread = 1.0 + PICTURE_SIZE_SPREAD * (2.0 * self.draws.next() - 1.0);
        let factor = if keyframe { KEYFRAME_FACTOR } else { 1.0 };
        let picture_bytes = budget_bytes * factor * spread;
        self.encoder_debt_bytes = (self.encoder_debt_bytes + picture_bytes - budget_bytes).max(0.0);
        let bytes = picture_bytes as u32 + FRAME_HEADER_BYTES as u32;
        let seq = self.next_frame_seq;
        self.next_frame_seq += 1;
        let packets = bytes.div_ceil(PACKET_BYTES);
        self.assemblies.insert(seq, Assembly { missing: packets, bytes, capture_us });
        for index in 0..packets {
            let size = if index + 1 < packets { PACKET_BYTES } else { bytes - PACKET_BYTES * (packets - 1) };
            self.video_queue.push_back(Packet { carries: Carries::Frame(seq), bytes: size, queued_us: capture_us });
            self.video_queued_bytes += u64::from(size);
        }
    }

    fn read_transport_stats(&mut self, now_us: u64) {
        let stats = TransportStats {
            rtt_ms: u32::try_from(self.smoothed_rtt_us / MS).unwrap_or(u32::MAX),
            cwnd_bytes: self.congestion_window(now_us),
            lost_packets: self.lost_packets,
            sent_packets: self.sent_packets,
            sent_bytes: self.sent_bytes,
        };
        self.controller.on_transport_stats(now_us, &stats);
    }

    /// Queues the probe cluster the controller asks for, if any.
    fn maybe_probe(&mut self, now_us: u64) {
        if !self.config.probing || !self.padding_queue.is_empty() {
            return;
        }
        let Some(cluster) = self.controller.poll_probe(now_us) else { return };
        for index in 0..cluster.datagrams {
            let padding = Carries::Padding { cluster: cluster.id, index, count: cluster.datagrams };
            let packet = Packet {
                carries: padding,
                bytes: (cluster.padding_bytes + PROBE_HEADER_BYTES) as u32,
                queued_us: now_us,
            };
            self.padding_queue.push_back((now_us + u64::from(index) * cluster.spacing_us, packet));
        }
    }

    // Transport.

    /// BBR's steady state: twice the bandwidth-delay product.
    fn congestion_window(&self, now_us: u64) -> u64 {
        let bandwidth_kbps = self.link.max_rate_kbps(now_us.saturating_sub(10 * self.min_rtt_us), now_us);
        (2 * u64::from(bandwidth_kbps) * self.min_rtt_us / 8_000).max(4 * u64::from(PACKET_BYTES))
    }

    fn transmit(&mut self, now_us: u64) {
        let window = self.congestion_window(now_us);
        if self.config.paced {
            self.pacer.set_rate(self.controller.video_pacing_kbps());
        }
        // Datagrams of a probe cluster join the sound's queue when due.
        while self.padding_queue.front().is_some_and(|(due_us, _)| *due_us <= now_us) {
            let (_, packet) = self.padding_queue.pop_front().expect("checked");
            self.audio_queue.push_back(packet);
        }
        loop {
            let video = self.video_queue.front().filter(|_| self.pacer.wait_us(now_us) == 0);
            let Some(packet) = self.audio_queue.front().or(video).copied() else { break };
            if self.in_flight_bytes + u64::from(packet.bytes) > window {
                break;
            }
            self.send_next(now_us);
        }
        let probe_timeout_us =
            (self.smoothed_rtt_us + 4 * self.rtt_variation_us + MAX_ACK_DELAY_US) << self.probes_in_a_row.min(16);
        if self.in_flight_bytes > 0 && now_us >= self.probe_timer_from_us + probe_timeout_us {
            if self.audio_queue.is_empty() && self.video_queue.is_empty() {
                self.audio_queue.push_back(Packet { carries: Carries::Probe, bytes: PROBE_BYTES, queued_us: now_us });
            }
            self.send_next(now_us);
            self.probes_in_a_row += 1;
            self.probe_timer_from_us = now_us;
        }
    }

    /// Sends the packet at the head of the queues (audio first).
    fn send_next(&mut self, now_us: u64) {
        let packet = match self.audio_queue.pop_front() {
            Some(packet) => packet,
            None => {
                let packet = self.video_queue.pop_front().expect("a packet waits");
                self.video_queued_bytes -= u64::from(packet.bytes);
                self.pacer.on_sent(now_us, packet.bytes as usize);
                packet
            }
        };
        let number = self.next_packet_number;
        self.next_packet_number += 1;
        self.sent_packets += 1;
        self.sent_bytes += u64::from(packet.bytes);
        if let Carries::Padding { cluster, index, count } = packet.carries {
            if index == 0 {
                self.padding_first = Some((now_us, self.sent_bytes));
            }
            if index + 1 == count
                && let Some(first) = self.padding_first.take()
            {
                let sent = ProbeSent { id: cluster, first, last: (now_us, self.sent_bytes) };
                self.controller.on_probe_sent(now_us, sent);
            }
        }
        self.in_flight_bytes += u64::from(packet.bytes);
        match self.link.send(now_us, packet.bytes) {
            Delivery::Arrives { at_us } => {
                self.schedule(at_us, EventKind::Arrive(packet));
                let ack_us = self.link.back_arrival_us(at_us);
                self.schedule(ack_us, EventKind::Ack { number, sent_us: now_us, bytes: packet.bytes });
            }
            Delivery::Lost => self.undeclared_losses.push_back((number, packet)),
        }
    }

    fn acknowledge(&mut self, now_us: u64, number: u64, sent_us: u64, bytes: u32) {
        self.in_flight_bytes -= u64::from(bytes);
        let rtt_us = now_us - sent_us;
        self.min_rtt_us = self.min_rtt_us.min(rtt_us);
        self.rtt_variation_us = (3 * self.rtt_variation_us + self.smoothed_rtt_us.abs_diff(rtt_us)) / 4;
        self.smoothed_rtt_us = (7 * self.smoothed_rtt_us + rtt_us) / 8;
        self.probe_timer_from_us = now_us;
        self.probes_in_a_row = 0;
        let mut resend = vec![];
        while self.undeclared_losses.front().is_some_and(|(lost, _)| *lost < number) {
            let (_, packet) = self.undeclared_losses.pop_front().expect("checked");
            self.lost_packets += 1;
            self.in_flight_bytes -= u64::from(packet.bytes);
            if matches!(packet.carries, Carries::Frame(_)) {
                resend.push(packet);
            }
        }
        for packet in resend.into_iter().rev() {
            self.video_queued_bytes += u64::from(packet.bytes);
            self.video_queue.push_front(packet);
        }
    }

    // Receiver.

    fn arrive(&mut self, now_us: u64, packet: Packet) {
        self.received_bytes += u64::from(packet.bytes);
        let seq = match packet.carries {
            Carries::Frame(seq) => seq,
            Carries::Audio(seq) => {
                let queued_ms = self.queued_ms(now_us, packet.queued_us, packet.bytes);
                self.worst_audio_queue_delay_ms = self.worst_audio_queue_delay_ms.max(Some(queued_ms));
                let capture_us = packet.queued_us as i64;
                self.jitter.insert(seq, capture_us, Vec::new(), now_us + RECEIVER_CLOCK_OFFSET_US);
                return;
            }
            Carries::Probe => return,
            Carries::Padding { cluster, index, count } => {
                let arrival_us = now_us + RECEIVER_CLOCK_OFFSET_US;
                if let Some(result) = self.probe_meter.on_probe(arrival_us, cluster, index, count, self.received_bytes)
                {
                    let at_us = self.link.back_arrival_us(now_us);
                    self.schedule(at_us, EventKind::ProbeResult(result));
                }
                return;
            }
        };
        if let Some(assembly) = self.assemblies.get_mut(&seq) {
            assembly.missing -= 1;
        }
        while self.assemblies.get(&self.next_delivery_seq).is_some_and(|frame| frame.missing == 0) {
            let frame = self.assemblies.remove(&self.next_delivery_seq).expect("checked");
            self.meter.on_frame(FrameArrival {
                arrival_us: now_us + RECEIVER_CLOCK_OFFSET_US,
                // The model encodes at once and hands each picture to the transport then.
                sent_us: frame.capture_us,
                bytes: frame.bytes as usize,
                seq: self.next_delivery_seq,
            });
            let queued_ms = self.queued_ms(now_us, frame.capture_us, frame.bytes);
            self.worst_queue_delay_ms = self.worst_queue_delay_ms.max(Some(queued_ms));
            self.next_delivery_seq += 1;
            self.trace.frames_delivered += 1;
        }
    }

    /// How long `bytes` sent from `since_us` and arriving at `now_us` waited beyond the
    /// path's own delay (propagation, and serialization at the link's rate), ms.
    fn queued_ms(&self, now_us: u64, since_us: u64, bytes: u32) -> u64 {
        let own_us =
            self.link.one_way_delay_us() + u64::from(bytes) * 8_000 / u64::from(self.link.rate_kbps(now_us).max(1));
        now_us.saturating_sub(since_us + own_us) / MS
    }

    /// The speaker asks for the next 10 ms of sound.
    fn play_sound_frame(&mut self, now_us: u64) {
        self.jitter.pop(now_us + RECEIVER_CLOCK_OFFSET_US);
        self.trace.sound_frames += 1;
    }

    fn send_report(&mut self, now_us: u64) {
        let bytes = self.meter.report(now_us + RECEIVER_CLOCK_OFFSET_US).encode();
        let at_us = self.link.back_arrival_us(now_us);
        self.schedule(at_us, EventKind::Report(bytes));
    }

    fn take_sample(&mut self, now_us: u64) {
        self.trace.samples.push(Sample {
            at_us: now_us,
            link_kbps: self.link.rate_kbps(now_us),
            estimate_kbps: self.controller.estimate_kbps(),
            target: self.controller.target(),
            queue_delay_ms: self.worst_queue_delay_ms.take(),
            audio_queue_delay_ms: self.worst_audio_queue_delay_ms.take(),
            sound_concealed: self.jitter.counters().concealed,
        });
    }
}
