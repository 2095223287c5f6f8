//! A listener exposed to the network: connection attempts that never finish (spoofed
//! Initials, stalled handshakes), a peer that withholds flow control credit, floods sound or
//! keyframe requests, splits its control messages across ticks, malformed video. Known callers still get
//! through, a hang-up is never held up, and the listener says what happened.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chat::net::wire::{AudioDatagram, ControlMessage, FrameHeader, video_stream_preamble};
use common::hostile::{
    InitialFlood, StallingForwarder, client_initials, close_reason, hostile_peer, loopback, runtime, try_connect,
};
use common::{Peer, fingerprint_of, peer_args_with, start_caller, start_listener, strict_args};

/// A listener that takes calls only from `dir/certs-b`'s identity.
fn listener_for_b(dir: &std::path::Path) -> (Peer, u16) {
    let b = fingerprint_of(dir, "b");
    start_listener(dir, "a", strict_args(dir, "a", &["--peer", &b]))
}

/// Calls `port` as b `calls` times, one after another, each for a second; all must succeed.
fn b_calls(dir: &std::path::Path, port: u16, calls: usize) {
    for i in 0..calls {
        let mut b = start_caller(dir, &format!("b{i}"), port, peer_args_with(dir, "b", &["--duration", "1"]));
        assert!(b.expect_exit(Duration::from_secs(20)).success(), "call {i}: {}", b.describe());
        assert!(b.stdout().contains("received"), "call {i} carried no pictures: {}", b.describe());
    }
}

#[test]
fn known_callers_get_through_while_unanswered_initials_arrive_at_100_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = listener_for_b(dir.path());
    let flood = InitialFlood::start(client_initials(dir.path(), 50), loopback(port), 100);
    std::thread::sleep(Duration::from_millis(500));
    b_calls(dir.path(), port, 3);
    let sent = flood.stop();
    assert!(sent >= 300, "only {sent} Initials sent");
    assert_eq!(a.stdout().lines().filter(|l| l.starts_with("call from")).count(), 3, "{}", a.describe());
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}

#[test]
fn known_callers_get_through_while_handshakes_stall() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = listener_for_b(dir.path());
    // Two other addresses keep handshakes stalled: each client's address is proven (its
    // Initial and the one answering the Retry get through), then nothing more comes.
    // The stalling clients share one identity: made once, before they connect side by side.
    chat::net::identity::Identity::load_or_create(&dir.path().join("certs-hostile")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stalled = Arc::new(AtomicUsize::new(0));
    let attacker = {
        let (stop, stalled, dir) = (Arc::clone(&stop), Arc::clone(&stalled), dir.path().to_path_buf());
        std::thread::spawn(move || {
            runtime().block_on(async {
                while !stop.load(Ordering::Relaxed) {
                    let mut held = Vec::new();
                    for source in [[127, 0, 0, 2], [127, 0, 0, 3]] {
                        for _ in 0..6 {
                            let forwarder = StallingForwarder::start(source, loopback(port), 2);
                            let front = forwarder.front.port();
                            let dir = dir.clone();
                            let attempt = tokio::spawn(async move {
                                // Beyond 4 per address the listener refuses at once: expected, so
                                // no panic (in a CI sim where the attack ran only one round, four
                                // such panics' backtraces were the likely hold-up of this
                                // runtime's timers).
                                let attempt = try_connect(&dir, front, None);
                                let _ = tokio::time::timeout(Duration::from_secs(5), attempt).await;
                            });
                            held.push((forwarder, attempt));
                            stalled.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    for (_, attempt) in &held {
                        attempt.abort();
                    }
                }
            })
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    b_calls(dir.path(), port, 3);
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    assert!(stalled.load(Ordering::Relaxed) >= 24);
    // The stalled handshakes were taken on, and dropped when they ran out of time.
    assert!(a.stderr().contains("did not finish its handshake"), "{}", a.describe());
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}

#[test]
fn a_half_open_connection_draws_back_less_than_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (_a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &[]));
    let initial = client_initials(dir.path(), 1).remove(0);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    socket.send_to(&initial, loopback(port)).unwrap();
    let (mut received, mut datagrams) = (0, 0);
    let started = Instant::now();
    let mut buf = [0u8; 2048];
    while started.elapsed() < Duration::from_secs(6) {
        if let Ok(n) = socket.recv(&mut buf) {
            received += n;
            datagrams += 1;
        }
    }
    // One Retry, and nothing else, for an address that has not proven itself.
    assert!(datagrams >= 1, "no answer at all");
    assert!(received < initial.len(), "{received} bytes in {datagrams} datagrams came back for {} sent", initial.len());
}

/// A transport that grants the listener almost no credit on any stream.
fn stingy_transport() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.stream_receive_window(64u32.into());
    transport
}

/// Sends P pictures that cannot be decoded (so the listener keeps asking for keyframes)
/// until the connection closes.
async fn undecodable_pictures(conn: &quinn::Connection) {
    let Ok(mut video) = conn.open_uni().await else { return };
    if video.write_all(&video_stream_preamble(0)).await.is_err() {
        return;
    }
    for seq in 0u64.. {
        let junk = [0x5a; 200];
        let header = FrameHeader { seq, capture_us: 0, sent_us: 0, keyframe: false, len: junk.len() as u32 };
        if video.write_all(&header.encode()).await.is_err() || video.write_all(&junk).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[test]
fn duration_ends_a_call_on_time_whatever_the_peer_withholds() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) =
        start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once", "--duration", "3"]));
    let rt = runtime();
    let peer = rt.block_on(hostile_peer(dir.path(), port, Some(stingy_transport())));
    let hello = Instant::now();
    // It never reads the control stream and grants it no credit.
    let conn = peer.conn.clone();
    rt.spawn(async move { undecodable_pictures(&conn).await });
    a.expect_exit(Duration::from_secs(10));
    let took = hello.elapsed();
    assert!(took < Duration::from_millis(4000), "--duration 3 took {took:?}\n{}", a.describe());
    drop(peer);
}

#[test]
fn ctrl_c_ends_a_call_at_once_whatever_the_peer_withholds() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let rt = runtime();
    let peer = rt.block_on(hostile_peer(dir.path(), port, Some(stingy_transport())));
    let conn = peer.conn.clone();
    rt.spawn(async move { undecodable_pictures(&conn).await });
    // Long enough for every queue toward the peer to fill.
    std::thread::sleep(Duration::from_secs(3));
    a.signal("INT");
    let interrupted = Instant::now();
    let status = a.expect_exit(Duration::from_secs(5));
    assert!(interrupted.elapsed() < Duration::from_secs(1), "took {:?}\n{}", interrupted.elapsed(), a.describe());
    assert!(status.success(), "{}", a.describe());
    drop(peer);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let rt = runtime();
    // A peer that never closes: the first Ctrl-C waits out its grace for it.
    let peer = rt.block_on(hostile_peer(dir.path(), port, Some(stingy_transport())));
    std::thread::sleep(Duration::from_millis(500));
    a.signal("INT");
    std::thread::sleep(Duration::from_millis(50));
    a.signal("INT");
    let status = a.expect_exit(Duration::from_secs(1));
    assert_eq!(status.code(), Some(130), "{}", a.describe());
    assert!(a.stderr().contains("interrupted again"), "{}", a.describe());
    drop(peer);
}

#[test]
fn a_hang_up_split_across_ticks_still_ends_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let rt = runtime();
    let mut peer = rt.block_on(hostile_peer(dir.path(), port, None));
    let hang_up = ControlMessage::HangUp.encode();
    rt.block_on(async {
        peer.send.write_all(&hang_up[..2]).await.unwrap();
        // Pings tick on the listener meanwhile.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        peer.send.write_all(&hang_up[2..]).await.unwrap();
    });
    let status = a.expect_exit(Duration::from_secs(3));
    assert!(status.success(), "{}", a.describe());
    assert!(a.stdout().contains("hung up"), "{}", a.describe());
}

#[test]
fn malformed_video_ends_the_call_with_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let rt = runtime();
    let reason = rt.block_on(async {
        let peer = hostile_peer(dir.path(), port, None).await;
        let mut stream = peer.conn.open_uni().await.unwrap();
        stream.write_all(b"X not a video stream").await.unwrap();
        close_reason(&peer.conn).await
    });
    assert!(reason.contains("unknown stream type"), "{reason}");
    assert!(!a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
    assert!(a.stderr().contains("broke the protocol: unknown stream type"), "{}", a.describe());
}

#[test]
fn a_sound_flood_is_dropped_unread_then_hung_up_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let rt = runtime();
    let reason = rt.block_on(async {
        let peer = hostile_peer(dir.path(), port, None).await;
        let flooding = {
            let conn = peer.conn.clone();
            tokio::spawn(async move {
                for seq in 0u64.. {
                    let datagram =
                        AudioDatagram { seq, capture_us: seq * 10_000, payload: &[0xf8, 0xff, 0xfe], previous: None };
                    if conn.send_datagram_wait(datagram.encode().into()).await.is_err() {
                        return seq;
                    }
                }
                unreachable!()
            })
        };
        let reason = close_reason(&peer.conn).await;
        (reason, flooding.await.unwrap())
    });
    let (reason, sent) = reason;
    assert!(reason.contains("flooded"), "{reason}");
    assert!(sent > 3000, "only {sent} datagrams sent");
    assert!(!a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
    assert!(a.stderr().contains("flooded us with datagrams"), "{}", a.describe());
}

/// A client session store that counts the tickets a server hands out.
#[derive(Debug, Default)]
struct TicketCounter(AtomicUsize);

impl rustls::client::ClientSessionStore for TicketCounter {
    fn set_kx_hint(&self, _: rustls::pki_types::ServerName<'static>, _: rustls::NamedGroup) {}
    fn kx_hint(&self, _: &rustls::pki_types::ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }
    fn set_tls12_session(&self, _: rustls::pki_types::ServerName<'static>, _: rustls::client::Tls12ClientSessionValue) {
    }
    fn tls12_session(&self, _: &rustls::pki_types::ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        None
    }
    fn remove_tls12_session(&self, _: &rustls::pki_types::ServerName<'static>) {}
    fn insert_tls13_ticket(
        &self,
        _: rustls::pki_types::ServerName<'static>,
        _: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn take_tls13_ticket(
        &self,
        _: &rustls::pki_types::ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        None
    }
}

#[test]
fn no_session_tickets_are_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (_a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &[]));
    let tickets = Arc::new(TicketCounter::default());
    runtime().block_on(async {
        let identity = chat::net::identity::Identity::load_or_create(&dir.path().join("certs-c")).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(None));
        let mut tls = chat::net::tls::client_config(&identity, None, seen).unwrap();
        tls.resumption = rustls::client::Resumption::store(Arc::clone(&tickets) as _);
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let client = chat::net::endpoint::caller(loopback(port)).unwrap();
        let conn = client
            .connect_with(quinn::ClientConfig::new(Arc::new(crypto)), loopback(port), chat::net::tls::SERVER_NAME)
            .unwrap()
            .await
            .unwrap();
        // Tickets come after the handshake, before anything else the server sends.
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&ControlMessage::Hello { width: 640, height: 480, fps: 30 }.encode()).await.unwrap();
        let mut len = [0u8; 2];
        recv.read_exact(&mut len).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        conn.close(0u32.into(), b"done");
    });
    assert_eq!(tickets.0.load(Ordering::Relaxed), 0);
}

#[test]
fn a_peer_asking_for_a_keyframe_at_every_picture_gets_about_three_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) =
        start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once", "--duration", "5"]));
    let rt = runtime();
    let groups = rt.block_on(async {
        let mut peer = hostile_peer(dir.path(), port, None).await;
        chat::net::endpoint::open_for_call(&peer.conn);
        // Each keyframe starts a group on a new stream: count the streams opened while the
        // peer asks for a keyframe every 20 ms, and read them so flow control never holds one.
        let opened = Arc::new(AtomicUsize::new(0));
        let counting = {
            let (conn, opened) = (peer.conn.clone(), Arc::clone(&opened));
            tokio::spawn(async move {
                while let Ok(mut stream) = conn.accept_uni().await {
                    opened.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let mut sink = vec![0u8; 64 << 10];
                        while let Ok(Some(_)) = stream.read(&mut sink).await {}
                    });
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = opened.load(Ordering::Relaxed);
        let asking_for = Duration::from_secs(3);
        let start = tokio::time::Instant::now();
        while start.elapsed() < asking_for {
            peer.send.write_all(&ControlMessage::KeyframeRequest.encode()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let groups = opened.load(Ordering::Relaxed) - before;
        counting.abort();
        groups
    });
    // One keyframe per 300 ms at most answers 150 requests in 3 s (at 30 fps: one in ten
    // pictures); every picture a keyframe would be 90 groups.
    println!("groups: {groups}");
    assert!((5..=12).contains(&groups), "{groups} groups in 3 s of keyframe requests\n{}", a.describe());
    a.expect_exit(Duration::from_secs(10));
}
