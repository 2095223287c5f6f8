//! The adaptive jitter buffer, sans IO: audio packets go in as they arrive, one frame's
//! worth comes out each time the speaker needs one. It starts playing a packet once it
//! has waited as long as the measured jitter plus a margin (so the packets after it, on
//! the same clock, have that much slack), sizes its `target` depth from the jitter (small
//! on a clean link, growing when arrivals spread out, shrinking back when they calm),
//! conceals lost packets, and counts underruns and late packets. Far behind (the speaker
//! stalled while packets kept coming), it skips straight to the packet due now rather
//! than play old sound. Time is an argument, so tests drive it in simulated time.
//!
//! While the peer sends each packet again inside the next one's datagram (redundant audio,
//! on a path that loses packets), a copy takes the place of a packet that is missing, and
//! the buffer waits one frame longer, so that the copy of a lost packet comes before its
//! turn.
//!
//! Jitter is not a change of level. A queue that fills in front of the sound (a bottleneck
//! taken by a burst of video at a capacity drop) and stands there is a new path delay, not
//! spread: packets behind it come late once, and the ones after them all come equally
//! late. When the queue drains, the delay falls back. Measuring spread against the
//! fastest packet of the last 2 s (as this did) took such a queue for 2 s of jitter after
//! it drained: the buffer held 200 ms of sound, and lip sync held every picture as long,
//! for seconds after the link had settled. So a packet's delay counts as jitter only by
//! how much it was slower than the packets both just before and just after it
//! (`SPIKE_US`): a burst that comes and goes counts in full, the edge of a level does not.
//! And packets are timed against the fastest of the last few (`REFERENCE_WINDOW_US`), the
//! path's delay now: a queue that stands is followed instead of its packets being dropped
//! as late, and one that drains is caught up with at once.
//!
//! Replayed on the sound packets of the network benchmark's calls (arrival and capture
//! times logged at trace level by `playout`), against the 2 s floor: over the 0.5 Mbit/s
//! drop, 41 and 40 frames concealed instead of 52 and 43, and the mean of the per-second
//! 95th percentile of the delay 107 and 105 ms instead of 115; on the 1 Mbit/s tbf link
//! 17 and 18 instead of 31 and 27, 85 ms instead of 92; under 2 % loss, unchanged. On
//! two other calls' logs, with the catch-up after a stall: 32 and 29 instead of 47 and 39
//! on the tbf link, 45 and 45 instead of 61 and 48 through the drop.

use std::collections::{BTreeMap, VecDeque};

use super::FRAME_US;

/// At most this many packets wait (1 s of audio): beyond that the oldest is dropped.
pub const MAX_BUFFERED: usize = 100;
/// How far back the jitter estimate looks.
const JITTER_WINDOW_US: u64 = 2_000_000;
/// A packet is as late as the fastest one this long before or after it allows: a delay
/// that comes and goes within this is jitter; one that lasts longer is a new level. Longer
/// than the bursts pictures make in a shared queue (a 2.5 kB picture takes 40 ms to drain
/// at 0.5 Mbit/s, a send window of keyframe 130 ms), so that the sound behind them counts.
/// In the replays 100 ms concealed 64, 74, 27 and 40 frames where 300 ms concealed 41, 40,
/// 17 and 18, for 10-20 ms less delay.
const SPIKE_US: u64 = 300_000;
/// Packets are timed against the fastest one of this long (three packets): the path's
/// delay now. In the replays 100 ms concealed 47, 48, 28 and 26 frames.
const REFERENCE_WINDOW_US: u64 = 30_000;
/// Margin above the measured jitter, for the scheduling noise of both ends.
const SAFETY_US: i64 = 8_000;
/// The target never exceeds this many frames (200 ms).
const MAX_TARGET_FRAMES: usize = 20;
/// Delay above the wanted one tolerated before the buffer drops a frame to catch up.
const SHRINK_SLACK_US: i64 = 2 * FRAME_US as i64;
/// Delay above the wanted one beyond which dropping a frame at a time would take too long
/// (a speaker that stalled, a buffer that overflowed): the buffer goes straight to the
/// packet due now.
const CATCH_UP_AT_ONCE_US: i64 = 100_000;
/// After this many frames with nothing to play, start again from silence and refill.
const RESTART_AFTER_FRAMES: u32 = 10;
/// A sequence number this far from the expected one (3 s) means the peer started again.
const RESTART_GAP: u64 = 300;
/// Copies count as flowing this long after the last one came: the sender keeps sending
/// them for seconds after its last loss, so a pause is the end of them.
const COPIES_FLOW_US: u64 = 500_000;

/// What the speaker gets for the next 10 ms.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout {
    /// Decode this packet, captured at `capture_us` (local clock).
    Packet { seq: u64, capture_us: i64, payload: Vec<u8> },
    /// A packet is missing or late: let the decoder conceal it.
    Conceal,
    /// Not playing (filling up, or nothing has arrived for a while).
    Silence,
}

/// What happened to an inserted packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    Buffered,
    /// Its turn had passed (already concealed): dropped.
    Late,
    /// A packet with this sequence number is already waiting.
    Duplicate,
}

/// Counts since the call started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitterCounters {
    /// Frames played with nothing to play while the buffer was running.
    pub underruns: u64,
    /// Frames the decoder had to conceal (lost, late or underrun).
    pub concealed: u64,
    /// Packets that came after their turn.
    pub late: u64,
    /// Frames played from the copy in the next packet's datagram, their own packet lost.
    pub recovered: u64,
    /// Packets dropped to bring the delay back down, or because the buffer was full.
    pub dropped: u64,
}

#[derive(Debug)]
struct Waiting {
    capture_us: i64,
    arrived_us: u64,
    payload: Vec<u8>,
    /// It came as the copy inside the next packet's datagram.
    copy: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct JitterBuffer {
    waiting: BTreeMap<u64, Waiting>,
    /// The sequence number whose turn is next; packets below it are late.
    next_seq: Option<u64>,
    playing: bool,
    empty_streak: u32,
    /// (arrival time, arrival - capture) of recent packets, local clock.
    transits: VecDeque<(u64, i64)>,
    /// How long a packet should wait before it plays: measured jitter plus the margin.
    wanted_delay_us: u64,
    /// The quickest arrival - capture of the last `REFERENCE_WINDOW_US`: a packet that
    /// took this long had no delay beyond the path's own (clock offsets included).
    fastest_transit_us: i64,
    /// The last packet played and its capture time, to date the ones that are missing.
    last_played: Option<(u64, i64)>,
    /// Until when copies of packets count as flowing (see `insert_previous`).
    copies_until_us: Option<u64>,
    counters: JitterCounters,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterBuffer {
    pub fn new() -> Self {
        Self {
            waiting: BTreeMap::new(),
            next_seq: None,
            playing: false,
            empty_streak: 0,
            transits: VecDeque::new(),
            wanted_delay_us: SAFETY_US as u64,
            fastest_transit_us: 0,
            last_played: None,
            copies_until_us: None,
            counters: JitterCounters::default(),
        }
    }

    /// A packet arrived at `now_us`; `capture_us` is its capture time on the local clock.
    pub fn insert(&mut self, seq: u64, capture_us: i64, payload: Vec<u8>, now_us: u64) -> Arrival {
        // Every arrival counts towards the jitter, late ones most of all.
        self.measure(now_us, (now_us as i64).saturating_sub(capture_us));
        if self.next_seq.is_some_and(|next| seq < next) {
            // A far older number is a peer that started counting again: follow it.
            if self.next_seq.is_some_and(|next| next - seq > RESTART_GAP) {
                self.restart_at(None);
            } else {
                self.counters.late += 1;
                return Arrival::Late;
            }
        }
        if self.next_seq.is_some_and(|next| seq - next > RESTART_GAP) {
            self.restart_at(None);
        }
        self.put(seq, Waiting { capture_us, arrived_us: now_us, payload, copy: false })
    }

    /// The datagram of packet `seq` (captured at `capture_us`, local clock), inserted at
    /// `now_us`, also carried `previous`, the copy of packet `seq - 1` (captured a frame
    /// earlier): it waits in that packet's place if that one has not come and its turn has
    /// not passed. Copies say nothing about jitter (each is a frame late by design), and one
    /// too late is not counted late: its packet was played or concealed already.
    pub fn insert_previous(&mut self, seq: u64, capture_us: i64, previous: Vec<u8>, now_us: u64) -> Arrival {
        self.copies_until_us = Some(now_us.saturating_add(COPIES_FLOW_US));
        let Some(seq) = seq.checked_sub(1) else { return Arrival::Late };
        if self.next_seq.is_some_and(|next| seq < next || seq - next > RESTART_GAP) {
            return Arrival::Late;
        }
        let capture_us = capture_us.saturating_sub(FRAME_US as i64);
        self.put(seq, Waiting { capture_us, arrived_us: now_us, payload: previous, copy: true })
    }

    /// `waiting` waits for its turn as packet `seq`, unless one already does; at most
    /// `MAX_BUFFERED` wait: the oldest go.
    fn put(&mut self, seq: u64, waiting: Waiting) -> Arrival {
        if self.waiting.contains_key(&seq) {
            return Arrival::Duplicate;
        }
        self.waiting.insert(seq, waiting);
        while self.waiting.len() > MAX_BUFFERED {
            self.waiting.pop_first();
            self.counters.dropped += 1;
        }
        Arrival::Buffered
    }

    fn restart_at(&mut self, next_seq: Option<u64>) {
        self.waiting.clear();
        self.next_seq = next_seq;
        self.playing = false;
        self.empty_streak = 0;
        self.last_played = None;
    }

    fn measure(&mut self, now_us: u64, transit_us: i64) {
        self.transits.push_back((now_us, transit_us));
        while self.transits.front().is_some_and(|&(at, _)| now_us.saturating_sub(at) > JITTER_WINDOW_US) {
            self.transits.pop_front();
        }
        self.fastest_transit_us = self
            .transits
            .iter()
            .rev()
            .take_while(|&&(at, _)| now_us.saturating_sub(at) <= REFERENCE_WINDOW_US)
            .map(|&(_, transit)| transit)
            .min()
            .unwrap_or(transit_us);
        let mut spikes = spikes_us(&self.transits);
        spikes.sort_unstable();
        // The 98th percentile: one packet in fifty may come too late, about what a lossy
        // link loses anyway.
        let spread = spikes[(spikes.len() - 1) * 98 / 100];
        let wanted_us = spread.max(0).saturating_add(SAFETY_US) as u64;
        // While copies come, a lost packet's copy comes a frame after it would have.
        let copies_flow = self.copies_until_us.is_some_and(|until| now_us < until);
        let for_copies_us = if copies_flow { FRAME_US } else { 0 };
        self.wanted_delay_us = (wanted_us + for_copies_us).min(MAX_TARGET_FRAMES as u64 * FRAME_US);
    }

    /// The next 10 ms to play, at `now_us`.
    pub fn pop(&mut self, now_us: u64) -> Playout {
        if !self.playing {
            // Start once the oldest packet has waited out the jitter: every later packet
            // then has that much slack before its turn.
            let ready = self
                .waiting
                .first_key_value()
                .is_some_and(|(_, first)| now_us.saturating_sub(first.arrived_us) >= self.wanted_delay_us);
            if !ready {
                return Playout::Silence;
            }
            self.playing = true;
            self.next_seq = self.waiting.first_key_value().map(|(&seq, _)| seq);
        }
        let Some(mut next) = self.next_seq else { return Playout::Silence };
        let wanted = self.wanted_delay_us as i64;
        let oldest_behind_us =
            self.waiting.first_key_value().map(|(_, oldest)| self.lateness(oldest.capture_us, now_us));
        if let Some(behind_us) = oldest_behind_us.filter(|&behind| behind > wanted + CATCH_UP_AT_ONCE_US) {
            let (behind_ms, waiting) = (behind_us / 1000, self.waiting.len());
            tracing::debug!(behind_ms, waiting, "sound far behind: skipping to the packet due now");
            next = self.skip_to_due(now_us);
        }
        if let Some(waiting) = self.waiting.get(&next)
            && self.lateness(waiting.capture_us, now_us) > wanted + SHRINK_SLACK_US
            && self.waiting.contains_key(&next.saturating_add(1))
        {
            // Too much delay has built up (the jitter calmed, or a burst arrived at once):
            // skip a frame to catch up.
            self.waiting.remove(&next);
            self.counters.dropped += 1;
            tracing::trace!(seq = next, "sound frame dropped to catch up");
            next = next.saturating_add(1);
        }
        if let Some(Waiting { capture_us, payload, copy, .. }) = self.waiting.remove(&next) {
            self.counters.recovered += u64::from(copy);
            self.next_seq = Some(next.saturating_add(1));
            self.empty_streak = 0;
            self.last_played = Some((next, capture_us));
            return Playout::Packet { seq: next, capture_us, payload };
        }
        self.counters.concealed += 1;
        if self.waiting.is_empty() {
            self.counters.underruns += 1;
            self.empty_streak += 1;
            if self.empty_streak > RESTART_AFTER_FRAMES {
                self.counters.concealed -= 1;
                self.counters.underruns -= 1;
                self.restart_at(Some(next));
                return Playout::Silence;
            }
        }
        let due_passed = self.expected_capture(next).is_some_and(|c| self.lateness(c, now_us) >= wanted);
        tracing::trace!(seq = next, due_passed, waiting = self.waiting.len(), "sound frame concealed");
        if due_passed {
            // Its time has come and gone: lost (or so late it is useless). Move on.
            self.next_seq = Some(next.saturating_add(1));
        } else {
            // Still within the jitter it may yet show: conceal, and keep its turn (the
            // delay grows by a frame, towards the wanted one).
            self.next_seq = Some(next);
            if !self.waiting.is_empty() {
                self.counters.underruns += 1;
            }
        }
        Playout::Conceal
    }

    /// Drops the waiting packets whose turn is long past, keeping the newest, and returns the
    /// first one left.
    fn skip_to_due(&mut self, now_us: u64) -> u64 {
        let wanted = self.wanted_delay_us as i64;
        while self.waiting.len() > 1
            && self.waiting.first_key_value().is_some_and(|(_, w)| self.lateness(w.capture_us, now_us) > wanted)
        {
            self.waiting.pop_first();
            self.counters.dropped += 1;
        }
        *self.waiting.first_key_value().expect("skipping leaves a packet").0
    }

    /// How much later than the quickest possible arrival a packet captured at
    /// `capture_us` is being played at `now_us`.
    fn lateness(&self, capture_us: i64, now_us: u64) -> i64 {
        (now_us as i64).saturating_sub(capture_us).saturating_sub(self.fastest_transit_us)
    }

    /// When packet `seq` was captured, from its neighbours (10 ms apart).
    fn expected_capture(&self, seq: u64) -> Option<i64> {
        let frames = |a: u64, b: u64| (a.abs_diff(b).min(u64::from(u32::MAX)) * FRAME_US) as i64;
        if let Some((played, capture)) = self.last_played
            && played < seq
        {
            return Some(capture.saturating_add(frames(seq, played)));
        }
        let (&later, waiting) = self.waiting.range(seq..).next()?;
        Some(waiting.capture_us.saturating_sub(frames(later, seq)))
    }

    /// Frames waiting to be played.
    pub fn depth_frames(&self) -> usize {
        self.waiting.len()
    }

    /// The wanted delay in frames: the depth the buffer aims for.
    pub fn target_frames(&self) -> usize {
        self.wanted_delay_us.div_ceil(FRAME_US).max(1) as usize
    }

    pub fn counters(&self) -> JitterCounters {
        self.counters
    }
}

/// How much later than its neighbours each of `transits` ((arrival, arrival - capture), in
/// arrival order) came: its transit minus the fastest within `SPIKE_US` before it, or
/// after it, whichever is less (the packets after it that have arrived so far; none yet
/// counts the one before). One pass each way with a running minimum (a monotonic queue).
fn spikes_us(transits: &VecDeque<(u64, i64)>) -> Vec<i64> {
    let fastest_within = |order: &mut dyn Iterator<Item = (usize, &(u64, i64))>| {
        let mut fastest = vec![None; transits.len()];
        let mut window: VecDeque<(u64, i64)> = VecDeque::new();
        for (index, &(at, transit)) in order {
            while window.front().is_some_and(|&(then, _)| then.abs_diff(at) > SPIKE_US) {
                window.pop_front();
            }
            fastest[index] = window.front().map(|&(_, quickest)| quickest);
            while window.back().is_some_and(|&(_, later)| later >= transit) {
                window.pop_back();
            }
            window.push_back((at, transit));
        }
        fastest
    };
    let before = fastest_within(&mut transits.iter().enumerate());
    let after = fastest_within(&mut transits.iter().enumerate().rev());
    transits
        .iter()
        .zip(before.into_iter().zip(after))
        .map(|(&(_, transit), neighbours)| match neighbours {
            (Some(before), Some(after)) => transit.saturating_sub(before.max(after)).max(0),
            (Some(before), None) => transit.saturating_sub(before).max(0),
            (None, Some(after)) => transit.saturating_sub(after).max(0),
            (None, None) => 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends a packet every 10 ms for `frames` frames, each taking `transit(seq)` µs (None =
    /// lost), and plays a frame every 10 ms. Returns what was played and the target seen
    /// at the end.
    fn simulate(
        buffer: &mut JitterBuffer,
        first_seq: u64,
        frames: u64,
        start_us: u64,
        transit: impl Fn(u64) -> Option<u64>,
    ) -> Vec<Playout> {
        simulate_datagrams(buffer, first_seq, frames, start_us, transit, false)
    }

    /// As `simulate`, each datagram also carrying a copy of the packet before it when
    /// `copies` is set.
    fn simulate_datagrams(
        buffer: &mut JitterBuffer,
        first_seq: u64,
        frames: u64,
        start_us: u64,
        transit: impl Fn(u64) -> Option<u64>,
        copies: bool,
    ) -> Vec<Playout> {
        let mut arrivals: Vec<(u64, u64)> = (first_seq..first_seq + frames)
            .filter_map(|seq| transit(seq).map(|t| (start_us + (seq - first_seq) * FRAME_US + t, seq)))
            .collect();
        arrivals.sort_unstable();
        let mut arrivals = arrivals.into_iter().peekable();
        let mut played = Vec::new();
        // The speaker asks 5 ms into each frame period.
        for tick in 0..frames {
            let now = start_us + tick * FRAME_US + 5_000;
            while let Some(&(at, seq)) = arrivals.peek()
                && at <= now
            {
                let capture = (start_us + (seq - first_seq) * FRAME_US) as i64;
                buffer.insert(seq, capture, vec![seq as u8], at);
                if copies && seq > first_seq {
                    buffer.insert_previous(seq, capture, vec![(seq - 1) as u8], at);
                }
                arrivals.next();
            }
            played.push(buffer.pop(now));
        }
        played
    }

    fn packets(played: &[Playout]) -> usize {
        played.iter().filter(|p| matches!(p, Playout::Packet { .. })).count()
    }

    #[test]
    fn a_clean_link_plays_every_packet_with_a_small_buffer() {
        let mut buffer = JitterBuffer::new();
        let played = simulate(&mut buffer, 0, 500, 1_000_000, |seq| Some(1_000 + (seq % 3) * 300));
        assert_eq!(buffer.target_frames(), 1);
        // The first pop comes before the first packet has waited out its margin.
        assert_eq!(packets(&played), 499);
        assert_eq!(played[0], Playout::Silence);
        assert_eq!(buffer.counters(), JitterCounters::default());
    }

    #[test]
    fn the_target_grows_with_jitter_and_shrinks_when_it_calms() {
        let mut buffer = JitterBuffer::new();
        // Arrivals spread over 0..40 ms.
        let spread = |seq: u64| Some(1_000 + (seq * 7919 % 41) * 1_000);
        let played = simulate(&mut buffer, 0, 600, 0, spread);
        assert!(buffer.target_frames() >= 4, "target {}", buffer.target_frames());
        // Once the target has grown, nothing underruns.
        let late = &played[200..];
        assert_eq!(packets(late), late.len(), "{:?}", buffer.counters());
        // Calm again: after the window passes, the target is back to one frame.
        simulate(&mut buffer, 600, 400, 6_000_000, |_| Some(1_000));
        assert_eq!(buffer.target_frames(), 1);
        assert!(buffer.depth_frames() <= 3, "depth {}", buffer.depth_frames());
    }

    /// How long after its capture each packet in `played` was played (the speaker asks 5 ms
    /// into each frame period, from `start_us`), by sequence number.
    fn played_delays_ms(played: &[Playout], start_us: u64) -> Vec<(u64, i64)> {
        let at = |tick: usize| (start_us + tick as u64 * FRAME_US + 5_000) as i64;
        played
            .iter()
            .enumerate()
            .filter_map(|(tick, playout)| match playout {
                Playout::Packet { seq, capture_us, .. } => Some((*seq, (at(tick) - capture_us) / 1_000)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_queue_that_fills_stands_and_drains_is_a_level_not_jitter() {
        // 20 ms of path. At 2 s a queue fills in 100 ms to 300 ms more, stands 1 s, and
        // drains in 300 ms; then the path is clean again.
        let transit_ms = |seq: u64| match seq {
            0..200 => 20,
            200..210 => 20 + (seq - 199) * 30,
            210..310 => 320,
            310..340 => 320 - (seq - 309) * 10,
            _ => 20,
        };
        let mut buffer = JitterBuffer::new();
        let played = simulate(&mut buffer, 0, 700, 0, |seq| Some(transit_ms(seq) * 1_000));
        let delays = played_delays_ms(&played, 0);
        let delay_of =
            |from: u64, to: u64| delays.iter().filter(move |(seq, _)| (from..to).contains(seq)).map(|(_, ms)| *ms);
        // Half a second into the standing queue, the sound plays steadily behind it.
        let standing: Vec<i64> = delay_of(260, 300).collect();
        assert_eq!(standing.len(), 40, "every packet plays: {standing:?}");
        assert!(standing.iter().all(|&ms| ms <= 345), "{standing:?}");
        // 300 ms after the queue has drained, the sound is back to what the clean path
        // needs (it was 2 s behind a 2 s window).
        assert!(delay_of(370, 700).all(|ms| ms <= 45), "{:?}", delay_of(340, 400).collect::<Vec<_>>());
        assert!(buffer.target_frames() <= 2, "target {}", buffer.target_frames());
    }

    #[test]
    fn the_bursts_pictures_make_in_a_shared_queue_stay_absorbed() {
        // At 15 pictures a second on a 0.5 Mbit/s link, each picture takes 40 ms to drain
        // from the bottleneck's queue, and the sound behind it waits as long: every 70 ms
        // a packet comes 40 ms late, the next 30, and so on.
        let transit_ms = |seq: u64| 20 + 40u64.saturating_sub(seq % 7 * 10);
        let mut buffer = JitterBuffer::new();
        let played = simulate(&mut buffer, 0, 600, 0, |seq| Some(transit_ms(seq) * 1_000));
        assert!(buffer.target_frames() >= 5, "target {}", buffer.target_frames());
        let settled = &played[100..];
        assert_eq!(packets(settled), settled.len(), "{:?}", buffer.counters());
        // And no more than that: the sound plays 40 ms behind the fastest packet, plus the margin.
        let delays = played_delays_ms(&played, 0);
        assert!(delays[100..].iter().all(|&(_, ms)| ms <= 20 + 40 + 25), "{:?}", &delays[100..120]);
    }

    #[test]
    fn losses_are_concealed_and_late_packets_counted() {
        let mut buffer = JitterBuffer::new();
        let played = simulate(&mut buffer, 0, 100, 0, |seq| (seq % 10 != 5).then_some(1_000));
        // Playout started with a margin, so the packet after a lost one is already there
        // when the lost one's turn comes: one concealed frame per loss, no underrun.
        let concealed = played.iter().filter(|p| **p == Playout::Conceal).count();
        assert_eq!(concealed, 10);
        assert_eq!(buffer.counters().concealed, 10);
        assert_eq!(buffer.counters().underruns, 0);
        // Packet 5 turns up long after its turn.
        assert_eq!(buffer.insert(5, 0, vec![], 2_000_000), Arrival::Late);
        assert_eq!(buffer.counters().late, 1);
    }

    #[test]
    fn a_lost_packet_plays_from_its_copy_in_the_next_datagram() {
        // 2 % of datagrams lost (a lost datagram takes its copy of the packet before with
        // it), two of them in a row once; 1-3 ms of jitter.
        let lost = |seq: u64| seq % 50 == 17 || seq == 418;
        let transit = |seq: u64| (!lost(seq)).then_some(1_000 + seq * 7919 % 3 * 1_000);
        let mut without = JitterBuffer::new();
        simulate_datagrams(&mut without, 0, 1_000, 0, transit, false);
        assert_eq!(without.counters().concealed, 21);
        let mut with = JitterBuffer::new();
        let played = simulate_datagrams(&mut with, 0, 1_000, 0, transit, true);
        // Only the first of the two in a row has no copy left: 417's went with 418. And one
        // frame is made up once, early on, as the buffer grows by the frame copies need.
        let expected = JitterCounters { concealed: 2, underruns: 1, recovered: 20, ..JitterCounters::default() };
        assert_eq!(with.counters(), expected);
        let payloads: Vec<u8> = played
            .iter()
            .filter_map(|p| match p {
                Playout::Packet { payload, .. } => Some(payload[0]),
                _ => None,
            })
            .collect();
        assert!(payloads.windows(2).all(|w| w[1] == w[0].wrapping_add(1) || w[1] == w[0].wrapping_add(2)));
        // For one frame more delay than without copies.
        assert_eq!(with.target_frames(), without.target_frames() + 1);
    }

    #[test]
    fn a_copy_of_a_packet_already_played_or_waiting_changes_nothing() {
        let mut buffer = JitterBuffer::new();
        simulate(&mut buffer, 0, 100, 0, |_| Some(1_000));
        let depth = buffer.depth_frames();
        // Packet 51's datagram with 50's copy, 50 played long ago.
        assert_eq!(buffer.insert_previous(51, 510_000, vec![], 1_000_000), Arrival::Late);
        assert_eq!(buffer.insert(100, 1_000_000, vec![], 1_001_000), Arrival::Buffered);
        assert_eq!(buffer.insert_previous(101, 1_010_000, vec![], 1_011_000), Arrival::Duplicate);
        assert_eq!(buffer.counters(), JitterCounters::default());
        assert_eq!(buffer.depth_frames(), depth + 1);
    }

    #[test]
    fn playout_starts_once_the_first_packet_has_waited_out_the_margin() {
        let mut buffer = JitterBuffer::new();
        buffer.insert(0, 0, vec![0], 1_000);
        assert_eq!(buffer.pop(1_000 + SAFETY_US as u64 - 1), Playout::Silence);
        assert!(matches!(buffer.pop(1_000 + SAFETY_US as u64), Playout::Packet { seq: 0, .. }));
    }

    #[test]
    fn an_underrun_conceals_and_keeps_the_turn() {
        let mut buffer = JitterBuffer::new();
        buffer.insert(0, 0, vec![0], 1_000);
        assert!(matches!(buffer.pop(10_000), Playout::Packet { seq: 0, .. }));
        // Packet 1 (captured at 10 ms) is not here at 15 ms, but could still come in time.
        assert_eq!(buffer.pop(15_000), Playout::Conceal);
        assert_eq!(buffer.counters().underruns, 1);
        assert_eq!(buffer.insert(1, 10_000, vec![1], 17_000), Arrival::Buffered);
        assert!(matches!(buffer.pop(25_000), Playout::Packet { seq: 1, .. }));
        // Packet 2 is not here when its time has passed: lost, and when it comes, late.
        assert_eq!(buffer.pop(35_000), Playout::Conceal);
        assert_eq!(buffer.insert(2, 20_000, vec![2], 36_000), Arrival::Late);
        assert_eq!(buffer.counters().late, 1);
    }

    #[test]
    fn a_long_silence_stops_playout_until_packets_return() {
        let mut buffer = JitterBuffer::new();
        buffer.insert(0, 0, vec![0], 1_000);
        buffer.pop(20_000);
        let played: Vec<Playout> = (0..20).map(|i| buffer.pop(30_000 + i * FRAME_US)).collect();
        assert_eq!(packets(&played), 0);
        assert_eq!(played.iter().filter(|p| **p == Playout::Conceal).count() as u32, RESTART_AFTER_FRAMES);
        assert_eq!(played.last(), Some(&Playout::Silence));
        buffer.insert(50, 500_000, vec![50], 501_000);
        assert_eq!(buffer.pop(502_000), Playout::Silence, "refilling");
        assert!(matches!(buffer.pop(520_000), Playout::Packet { seq: 50, .. }));
    }

    #[test]
    fn after_the_speaker_stalls_playout_goes_on_with_fresh_sound_at_once() {
        // Packets every 10 ms, 1 ms on the way; the speaker takes nothing from 1 s to
        // 2.5 s (a device stalled or its thread starved), so the buffer overflows. It once
        // stayed 1 s behind, concealing every frame while it dropped each packet it took in.
        let mut buffer = JitterBuffer::new();
        let mut played = Vec::new();
        for tick in 0..400u64 {
            let now = tick * FRAME_US + 5_000;
            buffer.insert(tick, (tick * FRAME_US) as i64, vec![tick as u8], tick * FRAME_US + 1_000);
            if !(100..250).contains(&tick) {
                played.push((tick, buffer.pop(now)));
            }
        }
        let after: Vec<&Playout> = played.iter().filter(|(tick, _)| *tick >= 250).map(|(_, p)| p).collect();
        assert!(after.iter().all(|p| matches!(p, Playout::Packet { .. })), "{after:?}");
        let Some((_, Playout::Packet { seq, .. })) = played.last() else { panic!("{played:?}") };
        assert!(399 - seq <= 2, "still {} frames behind", 399 - seq);
    }

    #[test]
    fn the_buffer_is_bounded_and_follows_a_restarted_peer() {
        let mut buffer = JitterBuffer::new();
        for seq in 0..1000u64 {
            buffer.insert(seq, seq as i64 * 10_000, vec![0; 100], 1_000 + seq * 10_000);
        }
        assert!(buffer.depth_frames() <= MAX_BUFFERED);
        while matches!(buffer.pop(20_000_000), Playout::Packet { .. }) {}
        // The peer starts again from 0: the buffer follows instead of calling it late.
        assert_eq!(buffer.insert(0, 20_000_000, vec![0], 20_001_000), Arrival::Buffered);
        assert!(matches!(buffer.pop(20_100_000), Playout::Packet { seq: 0, .. }));
    }
}
