//! Reaching a peer: a default listener takes IPv6 and IPv4 callers on one port, a caller
//! that gets no call says why (refused, nothing answers, no route), and a known peer found
//! at a new address is the same peer while another identity at a known address is not.
//! Behind a real NAT (tests/common/nat.rs: nftables masquerade and miniupnpd in network
//! namespaces, as root), a listener maps its port by PCP, NAT-PMP and UPnP-IGD, an outside
//! caller gets through, and the mapping goes when the listener exits; a router that maps
//! nothing, or answers garbage, is named in one line.

mod common;

use std::time::{Duration, Instant};

use common::nat::{Host, NatBed, Router};
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

/// Whether this machine has IPv6 loopback; says why the test skips if not.
fn has_ipv6() -> bool {
    let has = std::net::UdpSocket::bind("[::1]:0").is_ok();
    if !has {
        eprintln!("no IPv6 on this machine ([::1] cannot be bound): skipped");
    }
    has
}

#[test]
fn a_default_listener_takes_calls_over_ipv6_and_ipv4_on_one_port() {
    if !has_ipv6() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // No port mapping: this test must not ask the machine's real router anything.
    let (mut a, port) = listen_on(dir.path(), "a", "0", peer_args_with(dir.path(), "a", &["--no-port-map"]));
    let line = a.wait_for_line("listening on", Duration::from_secs(1));
    assert!(line.starts_with(&format!("listening on [::]:{port} (UDP, IPv6 and IPv4)")), "{line}");
    let (v6, v4) = (format!("[::1]:{port}"), format!("127.0.0.1:{port}"));
    let mut b = call(dir.path(), "b", &v6, peer_args(dir.path(), "b"));
    a.wait_for_line("call from [::1]:", Duration::from_secs(10));
    // An IPv4 caller meanwhile is told, through the same socket, that the listener is busy.
    let mut busy = call(dir.path(), "busy", &v4, peer_args(dir.path(), "busy"));
    assert!(!busy.expect_exit(Duration::from_secs(15)).success(), "{}", busy.describe());
    assert!(busy.stderr().contains("is busy in another call"), "{}", busy.describe());
    b.signal("INT");
    assert!(b.expect_exit(Duration::from_secs(5)).success(), "{}", b.describe());
    let mut c = call(dir.path(), "c", &v4, peer_args_with(dir.path(), "c", &["--duration", "2"]));
    assert!(c.expect_exit(Duration::from_secs(20)).success(), "{}", c.describe());
    for caller in [&b, &c] {
        assert!(caller.stdout().contains("received"), "{}", caller.describe());
    }
    // An IPv4 caller is shown as people write its address, not IPv4-mapped.
    let out = a.stdout();
    assert!(out.contains("call from 127.0.0.1:"), "{}", a.describe());
    assert!(out.contains("refused a call from 127.0.0.1:") && !out.contains("::ffff:"), "{}", a.describe());
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
    // A namespace with no route beyond its own veth's /24.
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
    if !has_ipv6() {
        return;
    }
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

/// A router with every protocol miniupnpd has.
const FULL_ROUTER: Router = Router::Miniupnpd { upnp: true, natpmp_pcp: true };
/// The listener's port behind the NAT, and on the router's public side.
const PORT: u16 = 1254;

/// Starts a listener in the bed's home network with `extra`.
fn listen_at_home(bed: &NatBed, dir: &std::path::Path, name: &str, extra: &[&str]) -> Peer {
    let mut args = peer_args_with(dir, name, extra);
    args.push("--listen".into());
    Peer::start_in_namespace(name, dir, bed.namespace(Host::Home), &strs(&args))
}

/// Calls the router's public address from outside, for `seconds` of call.
fn call_from_outside(bed: &NatBed, dir: &std::path::Path, name: &str, seconds: &str) -> Peer {
    let mut args = peer_args_with(dir, name, &["--duration", seconds]);
    args.extend(["--call".to_string(), format!("{}:{PORT}", bed.wan_address())]);
    Peer::start_in_namespace(name, dir, bed.namespace(Host::Outside), &strs(&args))
}

/// The call's summary line: "call with ... received N frames ...".
fn frames_received(peer: &Peer) -> u64 {
    let out = peer.stdout();
    let line = out.lines().find(|l| l.starts_with("call with")).unwrap_or_else(|| panic!("{}", peer.describe()));
    let after = line.split("received ").nth(1).unwrap_or_else(|| panic!("{line}"));
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn behind_a_router_that_maps_nothing_the_listener_says_what_to_forward_and_a_caller_outside_hears_nothing() {
    let Some(bed) = NatBed::create_or_skip(Router::None) else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut a = listen_at_home(&bed, dir.path(), "a", &["--once"]);
    let line = a.wait_for_line("behind a router", Duration::from_secs(10));
    assert!(
        line.starts_with(&format!(
            "behind a router that does not map ports: callers outside your network cannot reach you; \
             forward UDP {PORT} to {} on the router, or call them instead (router {}:",
            bed.home_address(),
            bed.gateway_lan_address()
        )),
        "{line}"
    );
    // The router's kernel says nothing listens on 5351 (for PCP and NAT-PMP alike), and no
    // UPnP device answers the search.
    assert!(line.contains("PCP and NAT-PMP: nothing listens on 192.168.77.1:5351"), "{line}");
    assert!(line.ends_with("UPnP-IGD: no router answered the search)"), "{line}");

    let started = Instant::now();
    let mut b = call_from_outside(&bed, dir.path(), "b", "1");
    assert!(!b.expect_exit(Duration::from_secs(15)).success(), "{}", b.describe());
    assert!(started.elapsed() < Duration::from_secs(12), "took {:?}", started.elapsed());
    let err = b.stderr();
    assert!(err.contains(&format!("nothing answers at {}:{PORT}", bed.wan_address())), "{err}");
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}

#[test]
fn each_mapping_protocol_lets_a_caller_outside_through_and_the_mapping_goes_when_the_listener_exits() {
    let Some(bed) = NatBed::create_or_skip(FULL_ROUTER) else { return };
    let dir = tempfile::tempdir().unwrap();
    let forwarded = |mappings: &[common::nat::Mapping]| {
        mappings.len() == 1
            && mappings[0].external_port == PORT
            && mappings[0].internal == std::net::SocketAddrV4::new(bed.home_address(), PORT)
    };
    // Each protocol in turn, each listener ending another way: after its one call, on
    // Ctrl-C, on SIGTERM; last, all of them at once (PCP answers first).
    for (method, name, ending) in [
        ("pcp", "PCP", None),
        ("nat-pmp", "NAT-PMP", Some("INT")),
        ("upnp", "UPnP-IGD", Some("TERM")),
        ("auto", "PCP", None),
    ] {
        let once: &[&str] = if ending.is_none() { &["--once"] } else { &[] };
        let json = dir.path().join(format!("a-{method}.json"));
        let options = ["--port-map", method, "--stats-json", json.to_str().unwrap()];
        let mut a = listen_at_home(&bed, dir.path(), &format!("a-{method}"), &[&options[..], once].concat());
        let line = a.wait_for_line("reachable from the internet", Duration::from_secs(10));
        let expected = format!(
            "reachable from the internet at {}:{PORT} (port mapped by the router, {name}, in ",
            bed.wan_address()
        );
        assert!(line.starts_with(&expected), "{line}\n{}", a.describe());
        let mappings = bed.wait_for_mappings(Duration::from_secs(2), forwarded);
        assert!(mappings.is_ok(), "{mappings:?}\n{}", bed.describe());
        if method == "auto" {
            // Past the time UPnP-IGD could still be asked and answer: one mapping, kept.
            std::thread::sleep(Duration::from_secs(4));
            assert!(forwarded(&bed.mappings().unwrap()), "{}", bed.describe());
            assert_eq!(a.stdout().matches("reachable from the internet").count(), 1, "{}", a.describe());
        }

        let mut b = call_from_outside(&bed, dir.path(), &format!("b-{method}"), "2");
        assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}\n{}", b.describe(), a.describe());
        assert!(frames_received(&b) > 10, "{}", b.describe());
        match ending {
            None => {}
            Some(signal) => {
                a.wait_for_line("call with", Duration::from_secs(5));
                a.signal(signal);
            }
        }
        assert!(a.expect_exit(Duration::from_secs(10)).success(), "{}", a.describe());
        assert!(frames_received(&a) > 10, "{}", a.describe());
        assert!(
            a.stdout()
                .contains(&format!("removed the port mapping {}:{PORT} from the router ({name})", bed.wan_address())),
            "{}",
            a.describe()
        );
        let stats = std::fs::read_to_string(&json).unwrap();
        let reachability: serde_json::Value =
            serde_json::from_str(stats.lines().find(|l| l.contains("reachability")).expect(&stats)).unwrap();
        assert_eq!(reachability["reachability"]["port_map"], name, "{stats}");
        assert_eq!(reachability["reachability"]["public_address"], format!("{}:{PORT}", bed.wan_address()));
        let gone = bed.wait_for_mappings(Duration::from_secs(2), |m| m.is_empty());
        assert!(gone.is_ok(), "{method}: {gone:?}\n{}", bed.describe());
    }
}

#[test]
fn reachability_names_the_router_each_protocol_and_the_public_address() {
    let Some(bed) = NatBed::create_or_skip(FULL_ROUTER) else { return };
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", bed.namespace(Host::Home), common::chat(), "--reachability"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        out.contains(&format!(
            "router: {} (this machine is {} on its network)",
            bed.gateway_lan_address(),
            bed.home_address()
        )),
        "{out}"
    );
    for method in ["PCP:", "NAT-PMP:", "UPnP-IGD:"] {
        let line = out.lines().find(|l| l.trim_start().starts_with(method)).unwrap_or_else(|| panic!("{out}"));
        assert!(line.ends_with(&format!("maps ports; public address {}", bed.wan_address())), "{line}");
    }
    assert!(
        out.contains(&format!("callers outside reach `chat --listen` here at {} (the router maps", bed.wan_address())),
        "{out}"
    );
    assert!(out.contains("IPv6: no global address"), "{out}");
    // The trial mappings are gone.
    assert_eq!(bed.mappings().unwrap(), vec![], "{}", bed.describe());
}

/// A fake PCP/NAT-PMP service on the router's LAN address answering each request as
/// `answer` says; stopped on drop.
/// How a fake router service answers one request (`None`: not at all).
type FakeAnswer = fn(&[u8]) -> Option<Vec<u8>>;

struct FakeRouterService {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRouterService {
    fn start(bed: &NatBed, answer: FakeAnswer) -> Self {
        let address = (bed.gateway_lan_address(), 5351);
        let socket = bed.run_inside(Host::Router, || std::net::UdpSocket::bind(address)).unwrap().unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf)
                    && let Some(reply) = answer(&buf[..n])
                {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for FakeRouterService {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_hostile_router_answer_is_named_in_one_line_and_the_listener_carries_on() {
    let Some(bed) = NatBed::create_or_skip(Router::None) else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, FakeAnswer, &str); 3] = [
        ("oversized", |_| Some(vec![2; 4000]), "the router's answer is not valid (an answer of more than 1100 bytes)"),
        ("malformed", |_| Some(vec![2, 0x81, 0, 0, 1]), "the router's answer is not valid (a PCP answer of 5 bytes"),
        ("silent", |_| None, "no answer from 192.168.77.1:5351 within 2000 ms"),
    ];
    for (case, answer, reason) in cases {
        let _service = FakeRouterService::start(&bed, answer);
        let started = Instant::now();
        let mut a = listen_at_home(&bed, dir.path(), &format!("a-{case}"), &["--port-map", "pcp"]);
        let line = a.wait_for_line("behind a router", Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(6), "{case}: took {:?}", started.elapsed());
        assert!(line.contains(&format!("(router 192.168.77.1: PCP: {reason}")), "{case}: {line}");
        // Still listening: it takes a call from its own network, and Ctrl-C ends it.
        let mut args = peer_args_with(dir.path(), &format!("b-{case}"), &["--duration", "1"]);
        args.extend(["--call".to_string(), format!("{}:{PORT}", bed.home_address())]);
        let mut b = Peer::start_in_namespace(&format!("b-{case}"), dir.path(), bed.namespace(Host::Home), &strs(&args));
        assert!(b.expect_exit(Duration::from_secs(20)).success(), "{case}: {}\n{}", b.describe(), a.describe());
        a.signal("INT");
        assert!(a.expect_exit(Duration::from_secs(5)).success(), "{case}: {}", a.describe());
    }
}
