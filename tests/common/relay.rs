//! A UDP relay that impairs what passes through it: loss, delay and jitter (which also
//! reorders), driven by a seed so every run is the same. It stands between two QUIC peers
//! on loopback, where this machine has no netem.

use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the relay does to each datagram, each way.
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    /// Probability of dropping a datagram.
    pub loss: f64,
    pub delay: Duration,
    /// Extra delay, uniform in 0..jitter: datagrams overtake each other.
    pub jitter: Duration,
    pub seed: u64,
}

/// A datagram waiting for its time.
struct Due {
    at: Instant,
    order: u64,
    bytes: Vec<u8>,
    to: SocketAddr,
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

/// A running relay; stops when dropped.
pub struct UdpRelay {
    pub port: u16,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub dropped: Arc<AtomicU64>,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

impl UdpRelay {
    /// Relays between whoever sends to the returned port and `target`.
    pub fn start(target: SocketAddr, impairment: Impairment) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        for socket in [&front, &back] {
            socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let port = front.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let queue: Queue = Arc::default();
        let order = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        // One reader per direction; they share one scheduled queue and one sender.
        for (from_front, seed) in [(true, impairment.seed), (false, impairment.seed ^ 0x9e37_79b9_7f4a_7c15)] {
            let (front, back) = (front.try_clone().unwrap(), back.try_clone().unwrap());
            let (stop, dropped, client, queue, order) =
                (Arc::clone(&stop), Arc::clone(&dropped), Arc::clone(&client), Arc::clone(&queue), Arc::clone(&order));
            threads.push(std::thread::spawn(move || {
                let mut rng = seed.max(1);
                let mut buf = vec![0u8; 65536];
                let socket = if from_front { &front } else { &back };
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                    let to = if from_front {
                        *client.lock().unwrap() = Some(from);
                        target
                    } else {
                        match *client.lock().unwrap() {
                            Some(client) => client,
                            None => continue,
                        }
                    };
                    if (xorshift(&mut rng) % 1_000_000) as f64 / 1e6 < impairment.loss {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let jitter_us = impairment.jitter.as_micros() as u64;
                    let extra = if jitter_us == 0 { 0 } else { xorshift(&mut rng) % jitter_us };
                    let at = Instant::now() + impairment.delay + Duration::from_micros(extra);
                    let due = Due { at, order: order.fetch_add(1, Ordering::Relaxed), bytes: buf[..n].to_vec(), to };
                    let (lock, ready) = &*queue;
                    lock.lock().unwrap().push(due);
                    ready.notify_one();
                }
            }));
        }
        let (stop_tx, queue_tx) = (Arc::clone(&stop), Arc::clone(&queue));
        threads.push(std::thread::spawn(move || {
            let (lock, ready) = &*queue_tx;
            let mut heap = lock.lock().unwrap();
            while !stop_tx.load(Ordering::Relaxed) {
                let now = Instant::now();
                match heap.peek() {
                    Some(next) if next.at <= now => {
                        let due = heap.pop().unwrap();
                        // Datagrams to the target leave from the back socket, replies from the front.
                        let socket = if due.to == target { &back } else { &front };
                        let _ = socket.send_to(&due.bytes, due.to);
                    }
                    Some(next) => {
                        let wait = next.at - now;
                        heap = ready.wait_timeout(heap, wait).unwrap().0;
                    }
                    None => heap = ready.wait_timeout(heap, Duration::from_millis(50)).unwrap().0,
                }
            }
        }));
        Self { port, stop, threads, dropped }
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
