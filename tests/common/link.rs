//! One direction of an impaired link as a plain state machine in simulated time: given when
//! each datagram reaches the link and its size, it decides the datagram's fate (delivered at
//! a time, or dropped and why). No sockets and no clock, so a schedule's effect can be
//! checked exactly; the UDP relay (`relay.rs`) runs one per direction in real time.
//!
//! A datagram goes through, in order: an outage window (dropped), random loss (dropped), the
//! bottleneck (waits its turn in a FIFO, tail-dropped when the queue is full, then takes
//! its serialisation time at the link rate), then the propagation delay plus jitter.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

/// Bytes a datagram takes on the wire beyond its payload: IPv4 and UDP headers.
pub const WIRE_OVERHEAD_BYTES: usize = 28;

/// A bottleneck: a link rate, and how much its queue may hold before it drops new arrivals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bottleneck {
    /// Link rate in bits per second; datagrams leave one after another at this rate.
    pub rate_bps: u64,
    /// Tail drop: a datagram is dropped if, counting its own serialisation, it would spend
    /// more than this between reaching the link and leaving it.
    pub max_queue_delay: Option<Duration>,
    /// Tail drop: a datagram is dropped if the queue (the datagram being sent included)
    /// would then hold more than this many wire bytes.
    pub max_queue_bytes: Option<usize>,
}

impl Bottleneck {
    /// A bottleneck of `rate_bps` bits per second with an unlimited queue.
    pub fn rate(rate_bps: u64) -> Self {
        assert!(rate_bps > 0, "a bottleneck needs a rate above zero (use an outage for a dead link)");
        Self { rate_bps, max_queue_delay: None, max_queue_bytes: None }
    }

    /// The same bottleneck whose queue holds at most `limit` of waiting and sending time.
    pub fn queue_delay(self, limit: Duration) -> Self {
        Self { max_queue_delay: Some(limit), ..self }
    }

    /// The same bottleneck whose queue holds at most `limit` wire bytes.
    pub fn queue_bytes(self, limit: usize) -> Self {
        Self { max_queue_bytes: Some(limit), ..self }
    }

    /// How long `wire_bytes` take to serialise at this rate.
    fn serialisation(&self, wire_bytes: usize) -> Duration {
        Duration::from_nanos((wire_bytes as u128 * 8 * 1_000_000_000 / self.rate_bps as u128) as u64)
    }
}

/// What one direction of a link does, as a schedule over time since the link started.
#[derive(Clone, Debug, Default)]
pub struct LinkPlan {
    /// Probability of dropping a datagram at random.
    pub loss: f64,
    /// Propagation delay, added after the bottleneck.
    pub delay: Duration,
    /// Extra delay, uniform in 0..jitter, after the bottleneck: datagrams overtake each other.
    pub jitter: Duration,
    /// Bottleneck phases in time order, each `(from, bottleneck)` in force until the next;
    /// `None` (and any time before the first phase) means no rate limit.
    pub bottleneck: Vec<(Duration, Option<Bottleneck>)>,
    /// Windows in which the link is down: a datagram is dropped if it reaches the link in
    /// one, or if its turn to leave the bottleneck falls in one.
    pub outages: Vec<Range<Duration>>,
}

impl LinkPlan {
    /// The plan with `bottleneck` (or none) in force from `from` on, until a later phase.
    pub fn limit_from(mut self, from: Duration, bottleneck: Option<Bottleneck>) -> Self {
        self.bottleneck.push((from, bottleneck));
        self.bottleneck.sort_by_key(|(from, _)| *from);
        self
    }

    /// The plan with the link down during `window`.
    pub fn outage(mut self, window: Range<Duration>) -> Self {
        self.outages.push(window);
        self
    }

    /// The bottleneck in force at `at`.
    fn bottleneck_at(&self, at: Duration) -> Option<Bottleneck> {
        self.bottleneck.iter().rev().find(|(from, _)| *from <= at).and_then(|(_, bottleneck)| *bottleneck)
    }

    fn is_down(&self, at: Duration) -> bool {
        self.outages.iter().any(|window| window.contains(&at))
    }
}

/// Why a datagram did not get through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    /// The link was down (an outage window).
    Outage,
    /// Random loss.
    Loss,
    /// The bottleneck's queue was full (tail drop).
    Queue,
}

/// What happens to one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It comes out of the link at this time since the link started.
    Delivered(Duration),
    /// It is dropped.
    Dropped(DropCause),
}

/// One direction of a link, running `plan` from time zero.
pub struct Link {
    plan: LinkPlan,
    rng: u64,
    /// When the bottleneck finishes sending what it holds.
    busy_until: Duration,
    /// What the bottleneck holds: each datagram's departure time and wire bytes, oldest first.
    queued: VecDeque<(Duration, usize)>,
    queued_bytes: usize,
}

impl Link {
    /// A link following `plan`; `seed` makes its random choices (loss, jitter) repeatable.
    pub fn new(plan: LinkPlan, seed: u64) -> Self {
        Self { plan, rng: seed.max(1), busy_until: Duration::ZERO, queued: VecDeque::new(), queued_bytes: 0 }
    }

    /// The fate of a datagram of `payload_bytes` reaching the link `at` (since the link
    /// started; calls come in time order). The same seed and arrivals give the same fates.
    pub fn admit(&mut self, at: Duration, payload_bytes: usize) -> Fate {
        if self.plan.is_down(at) {
            return Fate::Dropped(DropCause::Outage);
        }
        // Drawn for every datagram that reaches the link up, whatever comes after, so one
        // cause of drops does not change which datagrams another picks.
        if (xorshift(&mut self.rng) % 1_000_000) as f64 / 1e6 < self.plan.loss {
            return Fate::Dropped(DropCause::Loss);
        }
        let departure = match self.plan.bottleneck_at(at) {
            None => at,
            Some(bottleneck) => match self.enqueue(at, payload_bytes + WIRE_OVERHEAD_BYTES, bottleneck) {
                Ok(departure) => departure,
                Err(cause) => return Fate::Dropped(cause),
            },
        };
        let jitter_us = self.plan.jitter.as_micros() as u64;
        let extra = if jitter_us == 0 { 0 } else { xorshift(&mut self.rng) % jitter_us };
        Fate::Delivered(departure + self.plan.delay + Duration::from_micros(extra))
    }

    /// Queues `wire_bytes` arriving `at`; returns when they leave the bottleneck, or why
    /// they are dropped (the queue is full, or their turn falls in an outage).
    fn enqueue(&mut self, at: Duration, wire_bytes: usize, bottleneck: Bottleneck) -> Result<Duration, DropCause> {
        while self.queued.front().is_some_and(|(departure, _)| *departure <= at) {
            let (_, bytes) = self.queued.pop_front().unwrap();
            self.queued_bytes -= bytes;
        }
        let start = self.busy_until.max(at);
        let departure = start + bottleneck.serialisation(wire_bytes);
        let too_late = bottleneck.max_queue_delay.is_some_and(|limit| departure - at > limit);
        let too_big = bottleneck.max_queue_bytes.is_some_and(|limit| self.queued_bytes + wire_bytes > limit);
        if too_late || too_big {
            return Err(DropCause::Queue);
        }
        if self.plan.is_down(departure) {
            return Err(DropCause::Outage);
        }
        self.busy_until = departure;
        self.queued.push_back((departure, wire_bytes));
        self.queued_bytes += wire_bytes;
        Ok(departure)
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
