//! The NAT test bed itself (tests/common/nat.rs): the plain router drops what nobody asked
//! for without a word and masquerades what the home host sends; with miniupnpd it maps
//! ports asked for by UPnP-IGD, NAT-PMP and PCP, and unmaps them. Needs root; skips without.

mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::nat::{Host, Mapping, NatBed, Protocol, Router};

/// How long a datagram's answer may take before it counts as never coming.
const ANSWER_WAIT: Duration = Duration::from_millis(500);
/// How long a mapping may take to appear or go.
const MAPPING_WAIT: Duration = Duration::from_secs(2);
/// A router with every protocol miniupnpd has.
const FULL: Router = Router::Miniupnpd { upnp: true, natpmp_pcp: true };

/// A UDP server in one namespace that answers each datagram with "SOURCE PAYLOAD", and
/// counts them; stopped on drop.
struct Echo {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start(bed: &NatBed, host: Host, address: SocketAddrV4) -> Self {
        let socket = bed.run_inside(host, || UdpSocket::bind(address)).unwrap().expect("binding the echo server");
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let (stop, received) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (stopped, counter) = (stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            let mut buffer = [0; 1500];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buffer) {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let answer = format!("{from} {}", String::from_utf8_lossy(&buffer[..len]));
                    let _ = socket.send_to(answer.as_bytes(), from);
                }
            }
        });
        Self { stop, received, thread: Some(thread) }
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends `payload` from a fresh port in `host` to `to` on a connected socket (so an ICMP
/// error shows as `ConnectionRefused`) and returns the answer, or the error after
/// `ANSWER_WAIT` (`WouldBlock`) or on ICMP.
fn ask(bed: &NatBed, host: Host, to: SocketAddrV4, payload: &str) -> std::io::Result<String> {
    let socket = bed.run_inside(host, || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))).unwrap()?;
    socket.connect(to)?;
    socket.set_read_timeout(Some(ANSWER_WAIT))?;
    socket.send(payload.as_bytes())?;
    let mut answer = [0; 1500];
    let len = socket.recv(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer[..len]).into_owned())
}

/// `ask` that must get no answer and no ICMP error: a silent drop.
fn assert_silently_dropped(bed: &NatBed, host: Host, to: SocketAddrV4) {
    match ask(bed, host, to, "anyone?") {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("{to} from {host:?}: expected a silent drop, got {other:?}\n{}", bed.describe()),
    }
}

/// The source address the echo server reports in its answer.
fn echoed_source(answer: &str) -> SocketAddrV4 {
    answer.split(' ').next().and_then(|source| source.parse().ok()).unwrap_or_else(|| panic!("answer {answer:?}"))
}

/// Runs `program ARGS` in `host`'s namespace; whether it succeeded, and its stdout and stderr.
fn exec(bed: &NatBed, host: Host, program: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new("ip")
        .args(["netns", "exec", bed.namespace(host), program])
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("running {program}: {error}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn installed(program: &str) -> bool {
    Command::new(program).arg("-h").output().is_ok()
}

fn udp(external_port: u16, internal: SocketAddrV4) -> Mapping {
    Mapping { protocol: Protocol::Udp, external_port, internal }
}

/// A STUN Binding request, and the XOR-MAPPED-ADDRESS of its answer.
fn stun_mapped_address(bed: &NatBed, host: Host) -> SocketAddrV4 {
    let socket = bed.run_inside(host, || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))).unwrap().unwrap();
    socket.connect(bed.stun_server()).unwrap();
    socket.set_read_timeout(Some(ANSWER_WAIT)).unwrap();
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    request.extend_from_slice(b"chat-nat-bed");
    socket.send(&request).unwrap();
    let mut answer = [0; 64];
    let len = socket.recv(&mut answer).expect("a STUN answer");
    assert_eq!(len, 32, "{:02x?}", &answer[..len]);
    assert_eq!(answer[..2], [0x01, 0x01], "a Binding success");
    assert_eq!(answer[8..20], request[8..20], "the transaction id");
    assert_eq!(answer[20..26], [0x00, 0x20, 0x00, 0x08, 0x00, 0x01], "XOR-MAPPED-ADDRESS, IPv4");
    let port = u16::from_be_bytes([answer[26], answer[27]]) ^ 0x2112;
    let address = u32::from_be_bytes(answer[28..32].try_into().unwrap()) ^ 0x2112_A442;
    SocketAddrV4::new(Ipv4Addr::from_bits(address), port)
}

#[test]
fn plain_nat_drops_the_unasked_silently_and_masquerades() {
    let Some(bed) = NatBed::create_or_skip(Router::None) else { return };
    let home_echo = Echo::start(&bed, Host::Home, SocketAddrV4::new(bed.home_address(), 40000));
    let outside_echo = Echo::start(&bed, Host::Outside, SocketAddrV4::new(bed.outside_address(), 40001));

    // Nothing reaches the home host from outside, and nothing tells the caller so.
    assert_silently_dropped(&bed, Host::Outside, SocketAddrV4::new(bed.wan_address(), 40000));
    assert_eq!(home_echo.received(), 0);
    assert!(bed.mappings().unwrap().is_empty());
    // The control: a closed port on the router's LAN side does answer with an ICMP error,
    // so the silence above is the WAN side's firewall.
    let refused = ask(&bed, Host::Home, SocketAddrV4::new(bed.gateway_lan_address(), 40000), "anyone?");
    assert_eq!(refused.map_err(|error| error.kind()), Err(ErrorKind::ConnectionRefused));

    // The home host reaches outside, which sees the router's WAN address, and hears back.
    let answer = ask(&bed, Host::Home, SocketAddrV4::new(bed.outside_address(), 40001), "hello").unwrap();
    assert_eq!(*echoed_source(&answer).ip(), bed.wan_address(), "{answer}");
    assert!(answer.ends_with(" hello"));
    assert_eq!(outside_echo.received(), 1);
    // So does the STUN responder.
    assert_eq!(*stun_mapped_address(&bed, Host::Home).ip(), bed.wan_address());
}

#[test]
fn miniupnpd_maps_and_unmaps_by_upnp_and_natpmp() {
    let Some(bed) = NatBed::create_or_skip(FULL) else { return };
    let home = bed.home_address();
    let _echo = Echo::start(&bed, Host::Home, SocketAddrV4::new(home, 40000));
    let wan_port = |port| SocketAddrV4::new(bed.wan_address(), port);
    assert!(bed.mappings().unwrap().is_empty());
    assert_silently_dropped(&bed, Host::Outside, wan_port(40000));

    // UPnP, found by SSDP discovery.
    let (ok, out) = exec(&bed, Host::Home, "upnpc", &["-a", &home.to_string(), "40000", "40000", "UDP"]);
    let redirected = format!("external {}:40000 UDP is redirected to internal {home}:40000", bed.wan_address());
    assert!(ok && out.contains(&redirected), "{out}\n{}", bed.describe());
    assert_eq!(bed.mappings().unwrap(), [udp(40000, SocketAddrV4::new(home, 40000))]);
    let answer = ask(&bed, Host::Outside, wan_port(40000), "mapped?").unwrap();
    assert_eq!(*echoed_source(&answer).ip(), bed.outside_address(), "the caller's own address: {answer}");

    // Deleted (through the description URL: no discovery), and gone.
    let url = bed.upnp_description_url();
    let (ok, out) = exec(&bed, Host::Home, "upnpc", &["-u", &url, "-d", "40000", "UDP"]);
    assert!(ok && out.contains("UPNP_DeletePortMapping() returned : 0"), "{out}\n{}", bed.describe());
    assert_eq!(bed.mappings().unwrap(), []);
    assert_silently_dropped(&bed, Host::Outside, wan_port(40000));

    if !installed("natpmpc") {
        eprintln!("natpmpc not installed: NAT-PMP part skipped");
        return;
    }
    let gateway = bed.gateway_lan_address().to_string();
    let (ok, out) = exec(&bed, Host::Home, "natpmpc", &["-g", &gateway, "-a", "40002", "40000", "udp", "60"]);
    let public = format!("Public IP address : {}", bed.wan_address());
    assert!(ok && out.contains(&public) && out.contains("Mapped public port 40002"), "{out}\n{}", bed.describe());
    assert_eq!(bed.mappings().unwrap(), [udp(40002, SocketAddrV4::new(home, 40000))]);
    assert!(ask(&bed, Host::Outside, wan_port(40002), "mapped?").unwrap().ends_with(" mapped?"));
    // Lifetime 0 deletes.
    let (ok, out) = exec(&bed, Host::Home, "natpmpc", &["-g", &gateway, "-a", "40002", "40000", "udp", "0"]);
    assert!(ok, "{out}");
    bed.wait_for_mappings(MAPPING_WAIT, |mappings| mappings.is_empty()).unwrap();
}

/// A PCP MAP request (RFC 6887) for UDP `internal_port` from `client`, with `nonce`.
fn pcp_map_request(client: Ipv4Addr, nonce: [u8; 12], internal_port: u16, lifetime: u32) -> Vec<u8> {
    let mut request = vec![2, 1, 0, 0]; // version 2, MAP request
    request.extend_from_slice(&lifetime.to_be_bytes());
    request.extend_from_slice(&client.to_ipv6_mapped().octets());
    request.extend_from_slice(&nonce);
    request.extend_from_slice(&[17, 0, 0, 0]); // UDP
    request.extend_from_slice(&internal_port.to_be_bytes());
    request.extend_from_slice(&internal_port.to_be_bytes()); // the suggested external port
    request.extend_from_slice(&Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets()); // any IPv4
    request
}

/// Sends a PCP request from the home host; the answer's result code, lifetime, external
/// port and address.
fn pcp(bed: &NatBed, request: &[u8]) -> (u8, u32, SocketAddr) {
    let socket = bed.run_inside(Host::Home, || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))).unwrap().unwrap();
    socket.connect((bed.gateway_lan_address(), 5351)).unwrap();
    socket.set_read_timeout(Some(ANSWER_WAIT)).unwrap();
    socket.send(request).unwrap();
    let mut answer = [0; 1100];
    let len = socket.recv(&mut answer).expect("a PCP answer");
    assert!(len >= 60 && answer[..2] == [2, 0x81], "{:02x?}", &answer[..len]);
    assert_eq!(answer[24..36], request[24..36], "the nonce");
    let lifetime = u32::from_be_bytes(answer[4..8].try_into().unwrap());
    let port = u16::from_be_bytes([answer[42], answer[43]]);
    let address = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&answer[44..60]).unwrap());
    let address = address.to_ipv4_mapped().map_or(std::net::IpAddr::V6(address), std::net::IpAddr::V4);
    (answer[3], lifetime, SocketAddr::new(address, port))
}

#[test]
fn miniupnpd_maps_by_pcp_and_deletes_only_with_the_same_nonce() {
    let Some(bed) = NatBed::create_or_skip(Router::Miniupnpd { upnp: false, natpmp_pcp: true }) else { return };
    let home = bed.home_address();
    let _echo = Echo::start(&bed, Host::Home, SocketAddrV4::new(home, 40003));
    let nonce = *b"chat-pcp-map";

    let (result, lifetime, external) = pcp(&bed, &pcp_map_request(home, nonce, 40003, 300));
    assert_eq!(result, 0, "SUCCESS\n{}", bed.describe());
    assert_eq!(external, SocketAddr::from((bed.wan_address(), 40003)));
    assert!(lifetime > 0);
    assert_eq!(bed.mappings().unwrap(), [udp(40003, SocketAddrV4::new(home, 40003))]);
    let answer = ask(&bed, Host::Outside, SocketAddrV4::new(bed.wan_address(), 40003), "pcp?").unwrap();
    assert!(answer.ends_with(" pcp?"), "{answer}");

    // Another nonce may not delete it.
    let (result, ..) = pcp(&bed, &pcp_map_request(home, *b"someone-else", 40003, 0));
    assert_eq!(result, 2, "NOT_AUTHORIZED\n{}", bed.describe());
    assert_eq!(bed.mappings().unwrap().len(), 1, "{}", bed.describe());
    let (result, lifetime, _) = pcp(&bed, &pcp_map_request(home, nonce, 40003, 0));
    assert_eq!((result, lifetime), (0, 0), "{}", bed.describe());
    bed.wait_for_mappings(MAPPING_WAIT, |mappings| mappings.is_empty()).unwrap();
    // Flows the router already tracks outlive the mapping, so a fresh source port.
    assert_silently_dropped(&bed, Host::Outside, SocketAddrV4::new(bed.wan_address(), 40003));
}

#[test]
fn the_bed_goes_away_on_drop() {
    let Some(bed) = NatBed::create_or_skip(FULL) else { return };
    let names = [Host::Home, Host::Router, Host::Outside].map(|host| bed.namespace(host).to_string());
    assert!(names.iter().all(|name| common::netns::namespace_exists(name)));
    let pid = bed.miniupnpd_pid().expect("miniupnpd runs");
    drop(bed);
    assert!(names.iter().all(|name| !common::netns::namespace_exists(name)));
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "miniupnpd {pid} still running");
}
