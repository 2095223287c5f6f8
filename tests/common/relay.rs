//! A UDP relay that impairs what passes through it, each way on its own schedule (outages,
//! loss, a rate-limited bottleneck with a bounded queue, delay, jitter: see `link.rs`), and
//! can rebind: from given times on it sends to the listener from a new source port, as a NAT
//! does when its mapping changes. Seeded, so what it decides depends only on the seed and on
//! when datagrams arrive. It stands between two QUIC peers on loopback, where this machine
//! has no netem.

use std::collections::{BinaryHeap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::link::{DropCause, Fate, Link, LinkPlan};

/// What the relay does to each datagram, the same each way, for the whole run.
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    /// Probability of dropping a datagram.
    pub loss: f64,
    pub delay: Duration,
    /// Extra delay, uniform in 0..jitter: datagrams overtake each other.
    pub jitter: Duration,
    pub seed: u64,
}

/// What the relay does each way, over time since it started, and when it rebinds.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// Datagrams from the caller (whoever sends to the relay's port) to the listener.
    pub to_listener: LinkPlan,
    /// Datagrams from the listener back to the caller.
    pub to_caller: LinkPlan,
    /// Times at which the relay starts sending to the listener from a new source port (the
    /// old port is closed: what the listener still sends there is lost, as behind a NAT).
    pub rebind_at: Vec<Duration>,
    /// Times at which the caller's path dies: from then on, whatever comes from the address
    /// the caller used at that time, or is bound for it, is dropped (as an outage), as when
    /// the network it was on is gone. Only a caller that moves to a new address gets
    /// through again.
    pub caller_path_dies_at: Vec<Duration>,
    /// Seeds the random choices of both directions.
    pub seed: u64,
}

impl From<Impairment> for Scenario {
    fn from(impairment: Impairment) -> Self {
        let plan = LinkPlan {
            loss: impairment.loss,
            delay: impairment.delay,
            jitter: impairment.jitter,
            ..LinkPlan::default()
        };
        Self {
            to_listener: plan.clone(),
            to_caller: plan,
            rebind_at: Vec::new(),
            caller_path_dies_at: Vec::new(),
            seed: impairment.seed,
        }
    }
}

/// What became of the datagrams one way so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Datagrams sent on (or scheduled to be).
    pub delivered: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Dropped because the bottleneck's queue was full.
    pub queue_dropped: u64,
    /// Dropped because the link was down.
    pub outage_dropped: u64,
}

/// The live counters behind a `Tally`.
#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    lost: AtomicU64,
    queue_dropped: AtomicU64,
    outage_dropped: AtomicU64,
}

impl Counters {
    /// Counts one datagram's fate; a drop also counts in `all_dropped`, both ways' total.
    fn count(&self, fate: Fate, all_dropped: &AtomicU64) {
        if matches!(fate, Fate::Dropped(_)) {
            all_dropped.fetch_add(1, Ordering::Relaxed);
        }
        let counter = match fate {
            Fate::Delivered(_) => &self.delivered,
            Fate::Dropped(DropCause::Loss) => &self.lost,
            Fate::Dropped(DropCause::Queue) => &self.queue_dropped,
            Fate::Dropped(DropCause::Outage) => &self.outage_dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn tally(&self) -> Tally {
        Tally {
            delivered: self.delivered.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            queue_dropped: self.queue_dropped.load(Ordering::Relaxed),
            outage_dropped: self.outage_dropped.load(Ordering::Relaxed),
        }
    }
}

/// Where a datagram goes next.
#[derive(Clone, Copy)]
enum Hop {
    /// To the listener, from the relay's current listener-facing socket.
    Listener,
    /// Back to the caller at this address, from the relay's front socket.
    Caller(SocketAddr),
}

/// A datagram waiting for its time.
struct Due {
    at: Instant,
    order: u64,
    bytes: Vec<u8>,
    hop: Hop,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: the earliest datagram must compare greatest.
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

type Queue = Arc<(Mutex<BinaryHeap<Due>>, Condvar)>;

/// The socket the relay currently talks to the listener from; replaced on a rebinding.
type ListenerFacing = Arc<Mutex<Arc<UdpSocket>>>;

/// How long a blocked socket read or idle wait lasts before the threads look at `stop`.
const POLL: Duration = Duration::from_millis(50);

/// A running relay; stops when dropped.
pub struct UdpRelay {
    /// The port callers send to.
    pub port: u16,
    /// Every datagram dropped so far, either way and for any cause.
    pub dropped: Arc<AtomicU64>,
    started: Instant,
    to_listener: Arc<Counters>,
    to_caller: Arc<Counters>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn bind_loopback() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(POLL)).unwrap();
    socket
}

impl UdpRelay {
    /// Relays between whoever sends to the returned port and `target`, impaired the same way
    /// each way for the whole run.
    pub fn start(target: SocketAddr, impairment: Impairment) -> Self {
        Self::with_scenario(target, impairment.into())
    }

    /// Relays between whoever sends to the returned port and `target`, following `scenario`
    /// from now on.
    pub fn with_scenario(target: SocketAddr, scenario: Scenario) -> Self {
        let front = Arc::new(bind_loopback());
        let listener_facing: ListenerFacing = Arc::new(Mutex::new(Arc::new(bind_loopback())));
        let port = front.local_addr().unwrap().port();
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let (to_listener, to_caller) = (Arc::new(Counters::default()), Arc::new(Counters::default()));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let queue: Queue = Arc::default();
        let order = Arc::new(AtomicU64::new(0));
        let schedule = {
            let (queue, order) = (Arc::clone(&queue), Arc::clone(&order));
            move |fate: Fate, bytes: &[u8], hop: Hop| {
                if let Fate::Delivered(after) = fate {
                    let due = Due {
                        at: started + after,
                        order: order.fetch_add(1, Ordering::Relaxed),
                        bytes: bytes.to_vec(),
                        hop,
                    };
                    let (lock, ready) = &*queue;
                    lock.lock().unwrap().push(due);
                    ready.notify_one();
                }
            }
        };
        let mut threads = Vec::new();

        // From the caller: remember who it is, decide, schedule towards the listener.
        let mut link = Link::new(scenario.to_listener, scenario.seed);
        let (socket, stop_rx, dropped_rx, counters, client_rx, schedule_rx) = (
            Arc::clone(&front),
            Arc::clone(&stop),
            Arc::clone(&dropped),
            Arc::clone(&to_listener),
            Arc::clone(&client),
            schedule.clone(),
        );
        let mut deaths = scenario.caller_path_dies_at;
        deaths.sort();
        let mut deaths = VecDeque::from(deaths);
        // Caller addresses whose path has died, either way.
        let dead: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let dead_rx = Arc::clone(&dead);
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop_rx.load(Ordering::Relaxed) {
                let received = socket.recv_from(&mut buf);
                if deaths.front().is_some_and(|at| started.elapsed() >= *at) {
                    deaths.pop_front();
                    dead_rx.lock().unwrap().extend(*client_rx.lock().unwrap());
                }
                let Ok((n, from)) = received else { continue };
                if dead_rx.lock().unwrap().contains(&from) {
                    counters.count(Fate::Dropped(DropCause::Outage), &dropped_rx);
                    continue;
                }
                *client_rx.lock().unwrap() = Some(from);
                let fate = link.admit(started.elapsed(), n);
                counters.count(fate, &dropped_rx);
                schedule_rx(fate, &buf[..n], Hop::Listener);
            }
        }));

        // From the listener, on the current listener-facing socket: decide, schedule back.
        let mut link = Link::new(scenario.to_caller, scenario.seed ^ 0x9e37_79b9_7f4a_7c15);
        let (facing, stop_rx, dropped_rx, counters, client_rx) = (
            Arc::clone(&listener_facing),
            Arc::clone(&stop),
            Arc::clone(&dropped),
            Arc::clone(&to_caller),
            Arc::clone(&client),
        );
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop_rx.load(Ordering::Relaxed) {
                let socket = Arc::clone(&facing.lock().unwrap());
                let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
                // Sent to a port the relay has moved away from: a NAT has forgotten it.
                if !Arc::ptr_eq(&socket, &facing.lock().unwrap()) {
                    continue;
                }
                let Some(client) = *client_rx.lock().unwrap() else { continue };
                if dead.lock().unwrap().contains(&client) {
                    counters.count(Fate::Dropped(DropCause::Outage), &dropped_rx);
                    continue;
                }
                let fate = link.admit(started.elapsed(), n);
                counters.count(fate, &dropped_rx);
                schedule(fate, &buf[..n], Hop::Caller(client));
            }
        }));

        // One sender for both ways: each datagram at its time, and each rebinding at its own.
        let mut rebindings: Vec<Instant> = scenario.rebind_at.iter().map(|after| started + *after).collect();
        rebindings.sort();
        let mut rebindings = VecDeque::from(rebindings);
        let (stop_tx, queue_tx) = (Arc::clone(&stop), Arc::clone(&queue));
        threads.push(std::thread::spawn(move || {
            let (lock, ready) = &*queue_tx;
            let mut heap = lock.lock().unwrap();
            while !stop_tx.load(Ordering::Relaxed) {
                let now = Instant::now();
                if rebindings.front().is_some_and(|at| *at <= now) {
                    rebindings.pop_front();
                    *listener_facing.lock().unwrap() = Arc::new(bind_loopback());
                    continue;
                }
                match heap.peek() {
                    Some(next) if next.at <= now => {
                        let due = heap.pop().unwrap();
                        let _ = match due.hop {
                            Hop::Listener => listener_facing.lock().unwrap().send_to(&due.bytes, target),
                            Hop::Caller(client) => front.send_to(&due.bytes, client),
                        };
                    }
                    next => {
                        let wake = [next.map(|due| due.at), rebindings.front().copied(), Some(now + POLL)]
                            .into_iter()
                            .flatten()
                            .min()
                            .unwrap();
                        heap = ready.wait_timeout(heap, wake - now).unwrap().0;
                    }
                }
            }
        }));
        Self { port, dropped, started, to_listener, to_caller, stop, threads }
    }

    /// The instant the scenario's times count from.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// What became of the datagrams from the caller to the listener so far.
    pub fn to_listener(&self) -> Tally {
        self.to_listener.tally()
    }

    /// What became of the datagrams from the listener to the caller so far.
    pub fn to_caller(&self) -> Tally {
        self.to_caller.tally()
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
