//! Reaching a peer: a default listener takes IPv6 and IPv4 callers on one port, a caller
//! that gets no call says why (refused, nothing answers, no route), and a known peer found
//! at a new address is the same peer while another identity at a known address is not.

mod common;

use std::time::{Duration, Instant};

use common::netns::{Shape, VethLink};
use common::{Peer, fingerprint_of, peer_args, peer_args_with, strict_args, strs};

/// Starts a listener on `address` (port 0: any), returning it with its port.
fn listen_on(dir: &std::path::Path, name: &str, address: &str, args: Vec<String>) -> (Peer, u16) {
    let mut args = args;
    args.extend(["--listen".to_string(), address.to_string()]);
    let mut peer = Peer::start(name, dir, &strs(&args));
    let port = peer.listening_port();
    (peer, port)
}

fn call(dir: &std::path::Path, name: &str, target: &str, args: Vec<String>) -> Peer {
    let mut args = args;
    args.extend(["--call".to_string(), target.to_string()]);
    Peer::start(name, dir, &strs(&args))
}

#[test]
fn a_default_listener_takes_calls_over_ipv6_and_ipv4_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    // No port mapping: this test must not ask the machine's real router anything.
    let (mut a, port) = listen_on(dir.path(), "a", "0", peer_args_with(dir.path(), "a", &["--no-port-map"]));
    let line = a.wait_for_line("listening on", Duration::from_secs(1));
    assert!(line.starts_with(&format!("listening on [::]:{port} (UDP, IPv6 and IPv4)")), "{line}");
    for (n, target) in [format!("[::1]:{port}"), format!("127.0.0.1:{port}")].iter().enumerate() {
        let name = format!("b{n}");
        let mut b = call(dir.path(), &name, target, peer_args_with(dir.path(), &name, &["--duration", "2"]));
        assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
        assert!(b.stdout().contains("received"), "{}", b.describe());
    }
    // An IPv4 caller is shown as people write its address, not IPv4-mapped.
    let out = a.stdout();
    assert!(out.contains("call from [::1]:") && out.contains("call from 127.0.0.1:"), "{}", a.describe());
    assert!(!out.contains("::ffff:"), "{}", a.describe());
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}

#[test]
fn a_closed_port_is_refused_at_once_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let started = Instant::now();
    let mut b = call(dir.path(), "b", &format!("127.0.0.1:{port}"), peer_args(dir.path(), "b"));
    assert!(!b.expect_exit(Duration::from_secs(10)).success(), "{}", b.describe());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let err = b.stderr();
    assert!(err.contains("refused the call: nothing listens on UDP port") && err.contains("chat --listen"), "{err}");
}

#[test]
fn a_port_where_nothing_answers_is_named_within_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // A socket that takes every datagram and answers none: a firewall that drops, or a
    // router with no forwarding, as the caller sees it.
    let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = black_hole.local_addr().unwrap().port();
    let started = Instant::now();
    let mut b = call(dir.path(), "b", &format!("127.0.0.1:{port}"), peer_args(dir.path(), "b"));
    assert!(!b.expect_exit(Duration::from_secs(15)).success(), "{}", b.describe());
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(12), "took {took:?}");
    let err = b.stderr();
    assert!(err.contains(&format!("nothing answers at 127.0.0.1:{port} (UDP port {port}) within 10 s")), "{err}");
    assert!(err.contains("behind a router") && err.contains("chat --reachability"), "{err}");
    assert_eq!(err.matches("nothing answers").count(), 1, "said once: {err}");
}

#[test]
fn an_address_with_no_route_is_named_at_once() {
    // A namespace whose only interface is loopback: no route anywhere else.
    let shape = Shape { rate_bps: 1_000_000, burst_bytes: 10_000, latency: Duration::from_millis(50) };
    let Some(link) = VethLink::create_or_skip(shape, shape) else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut args = peer_args(dir.path(), "b");
    args.extend(["--call", "192.0.2.1:1254"].map(String::from));
    let started = Instant::now();
    let mut b = Peer::start_in_namespace("b", dir.path(), link.namespace(common::netns::Side::A), &strs(&args));
    assert!(!b.expect_exit(Duration::from_secs(10)).success(), "{}", b.describe());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let err = b.stderr();
    assert!(err.contains("cannot reach 192.0.2.1:1254: this machine has no route to 192.0.2.1"), "{err}");
}

#[test]
fn a_known_peer_at_a_new_address_is_accepted_and_moved_but_another_identity_there_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let known_peers = dir.path().join("certs-b/known_peers");
    let fingerprint = fingerprint_of(dir.path(), "a").replace(' ', "").to_lowercase();
    let once = |name: &str| peer_args_with(dir.path(), name, &["--once"]);

    // B meets A at its first address and remembers it.
    let (mut a, first) = listen_on(dir.path(), "a", "127.0.0.1:0", once("a"));
    let mut b =
        call(dir.path(), "b", &format!("127.0.0.1:{first}"), peer_args_with(dir.path(), "b", &["--duration", "1"]));
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    a.expect_exit(Duration::from_secs(5));
    assert!(std::fs::read_to_string(&known_peers).unwrap().contains(&format!("127.0.0.1:{first} {fingerprint}")));

    // A comes back at another address; B, accepting no new peers, knows it by its identity.
    let (mut a, second) = listen_on(dir.path(), "a2", "[::1]:0", once("a"));
    let target = format!("[::1]:{second}");
    let mut b = call(dir.path(), "b2", &target, strict_args(dir.path(), "b", &["--duration", "1"]));
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    a.expect_exit(Duration::from_secs(5));
    let out = b.stdout();
    assert!(
        out.contains(&format!("now answers at {target} (known at 127.0.0.1:{first} before)"))
            && out.contains("updated"),
        "{}",
        b.describe()
    );
    let known = std::fs::read_to_string(&known_peers).unwrap();
    assert!(known.contains(&format!("{target} {fingerprint}")), "{known}");
    assert!(!known.contains(&format!("127.0.0.1:{first}")), "moved, not copied: {known}");

    // Another identity at A's new address is refused loudly, and the file stays.
    let (_impostor, _) = listen_on(dir.path(), "impostor", &target, once("impostor"));
    let mut b = call(dir.path(), "b3", &target, strict_args(dir.path(), "b", &["--duration", "1"]));
    assert!(!b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    assert!(b.stderr().contains("different identity than before: REFUSED"), "{}", b.describe());
    assert_eq!(std::fs::read_to_string(&known_peers).unwrap(), known);
}
