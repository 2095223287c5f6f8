//! Peers that attack a listener: one that speaks chat's protocol up to the hellos and then
//! does whatever a test makes it do, real client Initials to send from sockets that never
//! answer, and a forwarder that lets a handshake start and then stalls it.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chat::net::endpoint;
use chat::net::identity::Identity;
use chat::net::tls;
use chat::net::wire::ControlMessage;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A connected peer, hellos exchanged.
pub struct Hostile {
    pub conn: quinn::Connection,
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    pub endpoint: quinn::Endpoint,
}

/// Connects to a listener on loopback with the identity in `dir/certs-hostile`, with chat's
/// own transport settings or `transport`; panics if the listener refuses.
pub async fn connect(
    dir: &Path,
    port: u16,
    transport: Option<quinn::TransportConfig>,
) -> (quinn::Connection, quinn::Endpoint) {
    let (conn, client) = try_connect(dir, port, transport).await;
    (conn.expect("the listener refused the hostile peer's handshake"), client)
}

/// As `connect`, for attempts the listener may refuse: the refusal is returned.
pub async fn try_connect(
    dir: &Path,
    port: u16,
    transport: Option<quinn::TransportConfig>,
) -> (Result<quinn::Connection, quinn::ConnectionError>, quinn::Endpoint) {
    let identity = Identity::load_or_create(&dir.join("certs-hostile")).unwrap();
    let addr = loopback(port);
    let client = endpoint::caller(addr).unwrap();
    let conn = match transport {
        None => endpoint::connect(&client, addr, &identity, None, Arc::new(Mutex::new(None))).unwrap().await,
        Some(transport) => {
            let tls = tls::client_config(&identity, None, Arc::new(Mutex::new(None))).unwrap();
            let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
            let mut config = quinn::ClientConfig::new(Arc::new(crypto));
            config.transport_config(Arc::new(transport));
            client.connect_with(config, addr, tls::SERVER_NAME).unwrap().await
        }
    };
    (conn, client)
}

/// Connects and exchanges hellos like a well-behaved peer.
pub async fn hostile_peer(dir: &Path, port: u16, transport: Option<quinn::TransportConfig>) -> Hostile {
    let (conn, endpoint) = connect(dir, port, transport).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&ControlMessage::Hello { width: 640, height: 480, fps: 30 }.encode()).await.unwrap();
    let mut len = [0u8; 2];
    recv.read_exact(&mut len).await.unwrap();
    let mut hello = vec![0u8; usize::from(u16::from_be_bytes(len))];
    recv.read_exact(&mut hello).await.unwrap();
    assert!(matches!(ControlMessage::decode(&hello), Ok(ControlMessage::Hello { .. })));
    Hostile { conn, send, recv, endpoint }
}

/// The reason the listener gave when it closed the connection.
pub async fn close_reason(conn: &quinn::Connection) -> String {
    match tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.expect("the listener did not close") {
        quinn::ConnectionError::ApplicationClosed(close) => String::from_utf8_lossy(&close.reason).into_owned(),
        other => panic!("closed without a reason: {other}"),
    }
}

/// `count` real client Initials, each opening a connection of its own (its own connection
/// IDs): what a quinn client sends first, caught by a socket that never answers.
pub fn client_initials(dir: &Path, count: usize) -> Vec<Vec<u8>> {
    let identity = Identity::load_or_create(&dir.join("certs-initials")).unwrap();
    let catcher = UdpSocket::bind("127.0.0.1:0").unwrap();
    catcher.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let target = catcher.local_addr().unwrap();
    runtime().block_on(async {
        let client = endpoint::caller(target).unwrap();
        let mut attempts = Vec::new();
        let mut initials: Vec<Vec<u8>> = Vec::new();
        let mut buf = [0u8; 2048];
        while initials.len() < count {
            attempts.push(endpoint::connect(&client, target, &identity, None, Arc::new(Mutex::new(None))).unwrap());
            // The newest attempt's first datagram, skipping older attempts' retransmissions.
            loop {
                let (n, _) = tokio::task::block_in_place(|| catcher.recv_from(&mut buf)).unwrap();
                let initial = buf[..n].to_vec();
                if !initials.iter().any(|seen| same_destination_id(seen, &initial)) {
                    initials.push(initial);
                    break;
                }
            }
        }
        initials
    })
}

/// Whether two long-header packets are for the same connection (same destination ID).
fn same_destination_id(a: &[u8], b: &[u8]) -> bool {
    let dcid = |p: &[u8]| p.get(6..6 + usize::from(p[5])).map(<[u8]>::to_vec);
    dcid(a) == dcid(b)
}

/// Sends each Initial from a fresh socket that closes at once, `per_second` of them a
/// second, round and round, until dropped.
pub struct InitialFlood {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<usize>>,
}

impl InitialFlood {
    pub fn start(initials: Vec<Vec<u8>>, target: SocketAddr, per_second: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let interval = Duration::from_secs(1) / per_second;
            let mut sent = 0;
            for initial in initials.iter().cycle() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.send_to(initial, target).unwrap();
                drop(socket);
                sent += 1;
                std::thread::sleep(interval);
            }
            sent
        });
        Self { stop, thread: Some(thread) }
    }

    /// Stops; how many Initials were sent.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for InitialFlood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Stands between a client and the listener, from its own source address: passes the
/// client's first `pass` datagrams (its Initial, and the Initial answering a Retry) and
/// everything back, then nothing more from the client. The listener is left waiting for a
/// handshake that never finishes.
pub struct StallingForwarder {
    pub front: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl StallingForwarder {
    pub fn start(source_ip: [u8; 4], target: SocketAddr, pass: usize) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind(SocketAddr::from((source_ip, 0))).unwrap();
        for socket in [&front, &back] {
            socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let front_addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let mut threads = Vec::new();
        {
            let (front, back, stop, client) =
                (front.try_clone().unwrap(), back.try_clone().unwrap(), Arc::clone(&stop), Arc::clone(&client));
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut passed = 0;
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else { continue };
                    *client.lock().unwrap() = Some(from);
                    if passed < pass {
                        passed += 1;
                        let _ = back.send_to(&buf[..n], target);
                    }
                }
            }));
        }
        {
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, _)) = back.recv_from(&mut buf) else { continue };
                    if let Some(client) = *client.lock().unwrap() {
                        let _ = front.send_to(&buf[..n], client);
                    }
                }
            }));
        }
        Self { front: front_addr, stop, threads }
    }
}

impl Drop for StallingForwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
