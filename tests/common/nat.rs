//! A home router for end-to-end tests: three network namespaces, "home" (the listener's host
//! on a private LAN), "router" (masquerade and a stateful firewall in nftables, optionally
//! miniupnpd offering UPnP-IGD, NAT-PMP and PCP) and "outside" (a caller on the router's
//! public side, which also answers STUN), with addresses that exist only inside them.
//! Everything is removed when the bed is dropped, also while a failed test unwinds. Needs
//! root, iproute2, nftables and, for port mapping, miniupnpd; without them
//! `NatBed::create_or_skip` says so in one line and the test skips.
//!
//! miniupnpd refuses to map ports while its WAN address is private or reserved, so the WAN
//! is a public-looking /24 (11.77.0.0/24) and miniupnpd learns its public address by STUN
//! from the responder in "outside" (the only way it takes such an address as public).

use std::fs::File;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::{NetnsError, check_available, run, run_in_namespace};

/// The listener's address on the LAN.
const HOME_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 20);
/// The router's LAN address: the home host's gateway, where miniupnpd listens.
const GATEWAY_LAN_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// The LAN, for the masquerade and miniupnpd's permission rule.
const LAN: &str = "192.168.77.0/24";
/// The router's public address. Not private, shared (100.64/10), TEST-NET or benchmarking
/// space, which miniupnpd would refuse; it exists only inside the namespaces.
const WAN_ADDRESS: Ipv4Addr = Ipv4Addr::new(11, 77, 0, 1);
/// The caller's address, on the WAN's /24.
const OUTSIDE_ADDRESS: Ipv4Addr = Ipv4Addr::new(11, 77, 0, 2);
/// The STUN responder's port in "outside" (the standard one).
const STUN_PORT: u16 = 3478;
/// miniupnpd's HTTP port for UPnP (fixed, so tests can skip SSDP discovery).
const UPNP_HTTP_PORT: u16 = 5000;
/// NAT-PMP's and PCP's server port.
const NATPMP_PORT: u16 = 5351;
/// How long miniupnpd may take to get ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Interface names; each namespace has its own, so they are the same in every bed.
const HOME_DEVICE: &str = "eth0";
const ROUTER_LAN: &str = "lan";
const ROUTER_WAN: &str = "wan";
const OUTSIDE_DEVICE: &str = "eth0";

/// The router's nftables table and the chains miniupnpd adds its rules to.
const TABLE: &str = "chatnat";
const UPNP_FORWARD_CHAIN: &str = "upnp_forward";
const UPNP_NAT_CHAIN: &str = "upnp_prerouting";
const UPNP_POSTROUTING_CHAIN: &str = "upnp_postrouting";

/// Numbers the beds this process makes, so their names never collide.
static NEXT_BED: AtomicU32 = AtomicU32::new(0);

/// What the router offers besides NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    /// No port mapping: a plain NAT that drops everything unsolicited from the WAN.
    None,
    /// miniupnpd with the chosen protocols (NAT-PMP and PCP come together).
    Miniupnpd { upnp: bool, natpmp_pcp: bool },
}

/// One of the three namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// The listener's host behind the NAT.
    Home,
    /// The router between the LAN and the WAN.
    Router,
    /// The caller's host on the WAN, and the STUN responder.
    Outside,
}

/// A port mapping's transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

/// A port forward miniupnpd has put into the router's ruleset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub protocol: Protocol,
    /// The port on the WAN address.
    pub external_port: u16,
    /// Where the router forwards it to.
    pub internal: SocketAddrV4,
}

/// Why a bed could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// Not root, no iproute2, or an `ip` command failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// nftables, miniupnpd or setpriv is not installed.
    #[error("NAT test bed skipped: `{tool}` not found (scripts/setup.sh installs {package})")]
    MissingTool { tool: &'static str, package: &'static str },
    /// A file, socket or process of the bed.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// miniupnpd did not get ready.
    #[error("miniupnpd {problem}; its log:\n{log}")]
    Miniupnpd { problem: String, log: String },
    /// `nft -j` printed something this helper cannot read.
    #[error("cannot read the router's ruleset: {0}")]
    Ruleset(String),
    /// `wait_for_mappings` ran out of time.
    #[error("mappings still {mappings:?} after {timeout:?}; miniupnpd's log:\n{log}")]
    Mappings { mappings: Vec<Mapping>, timeout: Duration, log: String },
}

impl NatError {
    /// Whether this machine cannot run NAT tests at all (as opposed to a failure).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Netns(error) => error.is_unavailable(),
            Self::MissingTool { .. } => true,
            _ => false,
        }
    }
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NatError {
    let what = what.into();
    move |source| NatError::Io { what, source }
}

/// Home, router and outside, wired as a home network behind a NAT; removed on drop.
pub struct NatBed {
    /// Home, router, outside.
    namespaces: [String; 3],
    stun: Option<StunResponder>,
    miniupnpd: Option<Child>,
    /// miniupnpd's config, lease, pid and log files, and the ruleset file.
    dir: tempfile::TempDir,
}

impl NatBed {
    /// Builds the bed, starts the STUN responder and, if asked, miniupnpd (with at least one
    /// protocol on); returns once miniupnpd answers (within a few seconds, or an error with
    /// its log). miniupnpd dies with the thread that calls this (`PR_SET_PDEATHSIG`, so that
    /// a killed test leaves no daemon behind): keep the bed on that thread.
    pub fn create(router: Router) -> Result<Self, NatError> {
        check_available()?;
        check_tool("nft", "nftables")?;
        if let Router::Miniupnpd { .. } = router {
            check_tool("miniupnpd", "miniupnpd-nftables")?;
            check_tool("setpriv", "util-linux")?;
        }
        remove_stale_beds();
        let (pid, n) = (std::process::id(), NEXT_BED.fetch_add(1, Ordering::Relaxed));
        let prefix = format!("chat-nat-{pid}-{n}-");
        let dir = tempfile::Builder::new().prefix(&prefix).tempdir().map_err(io_error("making a temp dir"))?;
        let mut bed = Self {
            namespaces: ["home", "router", "outside"].map(|host| format!("chat-nat-{pid}-{n}-{host}")),
            stun: None,
            miniupnpd: None,
            dir,
        };
        // From here on, dropping `bed` removes whatever part of it was made.
        let [home, router_ns, outside] = bed.namespaces.each_ref().map(String::as_str);
        for namespace in [home, router_ns, outside] {
            run("ip", &["netns", "add", namespace])?;
            run("ip", &["-n", namespace, "link", "set", "lo", "up"])?;
        }
        for (namespace, device, peer_namespace, peer) in
            [(home, HOME_DEVICE, router_ns, ROUTER_LAN), (router_ns, ROUTER_WAN, outside, OUTSIDE_DEVICE)]
        {
            let veth = ["link", "add", device, "type", "veth", "peer", "name", peer, "netns", peer_namespace];
            run("ip", &[&["-n", namespace][..], &veth[..]].concat())?;
        }
        for (namespace, device, address) in [
            (home, HOME_DEVICE, HOME_ADDRESS),
            (router_ns, ROUTER_LAN, GATEWAY_LAN_ADDRESS),
            (router_ns, ROUTER_WAN, WAN_ADDRESS),
            (outside, OUTSIDE_DEVICE, OUTSIDE_ADDRESS),
        ] {
            run("ip", &["-n", namespace, "addr", "add", &format!("{address}/24"), "dev", device])?;
            run("ip", &["-n", namespace, "link", "set", device, "up"])?;
        }
        run("ip", &["-n", home, "route", "add", "default", "via", &GATEWAY_LAN_ADDRESS.to_string()])?;
        bed.run_inside(Host::Router, || std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))?
            .map_err(io_error("turning on forwarding in the router"))?;
        let ruleset = bed.dir.path().join("router.nft");
        std::fs::write(&ruleset, router_ruleset()).map_err(io_error("writing the router's ruleset"))?;
        bed.nft(&["-f", &path_str(&ruleset)])?;

        let socket = bed
            .run_inside(Host::Outside, || UdpSocket::bind((OUTSIDE_ADDRESS, STUN_PORT)))?
            .map_err(io_error("binding the STUN responder"))?;
        bed.stun = Some(StunResponder::start(socket)?);

        if let Router::Miniupnpd { upnp, natpmp_pcp } = router {
            bed.start_miniupnpd(upnp, natpmp_pcp)?;
        }
        Ok(bed)
    }

    /// `create`, or `None` after one line on stderr saying why this machine cannot (not
    /// root, a tool missing); any other failure panics.
    pub fn create_or_skip(router: Router) -> Option<Self> {
        match Self::create(router) {
            Ok(bed) => Some(bed),
            Err(error) if error.is_unavailable() => {
                eprintln!("{error}");
                None
            }
            Err(error) => panic!("building the NAT test bed: {error}"),
        }
    }

    /// The namespace's name, for `ip netns exec NAME ...`.
    pub fn namespace(&self, host: Host) -> &str {
        &self.namespaces[host as usize]
    }

    /// Runs `work` on a thread inside the host's namespace and returns its result. Sockets
    /// it opens stay in that namespace, so any thread can use them afterwards.
    pub fn run_inside<T: Send>(&self, host: Host, work: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        run_in_namespace(self.namespace(host), work)
    }

    /// The router's public address: where callers outside reach mapped ports.
    pub fn wan_address(&self) -> Ipv4Addr {
        WAN_ADDRESS
    }

    /// The home host's (private) address.
    pub fn home_address(&self) -> Ipv4Addr {
        HOME_ADDRESS
    }

    /// The router's LAN address: the home host's gateway, and the NAT-PMP/PCP server.
    pub fn gateway_lan_address(&self) -> Ipv4Addr {
        GATEWAY_LAN_ADDRESS
    }

    /// The caller's address on the WAN.
    pub fn outside_address(&self) -> Ipv4Addr {
        OUTSIDE_ADDRESS
    }

    /// The STUN responder in "outside": it answers a Binding request with the address it
    /// came from, which for the home host is the router's WAN address and mapped port.
    pub fn stun_server(&self) -> SocketAddrV4 {
        SocketAddrV4::new(OUTSIDE_ADDRESS, STUN_PORT)
    }

    /// miniupnpd's UPnP root description (`upnpc -u URL`, skipping SSDP discovery).
    pub fn upnp_description_url(&self) -> String {
        format!("http://{GATEWAY_LAN_ADDRESS}:{UPNP_HTTP_PORT}/rootDesc.xml")
    }

    /// The port forwards in the router's ruleset now (miniupnpd's DNAT rules), in rule order.
    pub fn mappings(&self) -> Result<Vec<Mapping>, NatError> {
        parse_mappings(&self.nft(&["-j", "list", "chain", "inet", TABLE, UPNP_NAT_CHAIN])?)
    }

    /// Polls `mappings` until `condition` holds on them (every 50 ms); the mappings then, or
    /// an error with the last ones and miniupnpd's log after `timeout`.
    pub fn wait_for_mappings(
        &self,
        timeout: Duration,
        condition: impl Fn(&[Mapping]) -> bool,
    ) -> Result<Vec<Mapping>, NatError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mappings = self.mappings()?;
            if condition(&mappings) {
                return Ok(mappings);
            }
            if Instant::now() >= deadline {
                return Err(NatError::Mappings { mappings, timeout, log: self.miniupnpd_log() });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The router's whole nftables ruleset, for failure messages.
    pub fn ruleset(&self) -> String {
        self.nft(&["list", "ruleset"]).unwrap_or_else(|error| error.to_string())
    }

    /// miniupnpd's process id (`None` for `Router::None`).
    pub fn miniupnpd_pid(&self) -> Option<u32> {
        self.miniupnpd.as_ref().map(Child::id)
    }

    /// What miniupnpd has printed so far (empty without it), for failure messages.
    pub fn miniupnpd_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The ruleset and miniupnpd's log, for failure messages.
    pub fn describe(&self) -> String {
        format!("--- router ruleset:\n{}--- miniupnpd log:\n{}", self.ruleset(), self.miniupnpd_log())
    }

    /// Runs `nft ARGS` in the router; its output.
    fn nft(&self, args: &[&str]) -> Result<String, NetnsError> {
        run("ip", &[&["netns", "exec", self.namespace(Host::Router), "nft"][..], args].concat())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("miniupnpd.log")
    }

    /// Starts miniupnpd in the router (in the foreground, dying with this thread) and waits
    /// until the enabled protocols answer.
    fn start_miniupnpd(&mut self, upnp: bool, natpmp_pcp: bool) -> Result<(), NatError> {
        let dir = self.dir.path();
        let config = dir.join("miniupnpd.conf");
        std::fs::write(&config, miniupnpd_config(upnp, natpmp_pcp, &path_str(&dir.join("miniupnpd.leases"))))
            .map_err(io_error("writing miniupnpd's config"))?;
        let log = File::create(self.log_path()).map_err(io_error("creating miniupnpd's log"))?;
        let log_too = log.try_clone().map_err(io_error("sharing miniupnpd's log"))?;
        let (config, pid_file) = (path_str(&config), path_str(&dir.join("miniupnpd.pid")));
        // `ip netns exec` and setpriv exec, so the child is miniupnpd itself; PDEATHSIG kills
        // it if this thread dies without dropping the bed.
        let child = Command::new("ip")
            .args(["netns", "exec", self.namespace(Host::Router), "setpriv", "--pdeathsig", "KILL"])
            .args(["miniupnpd", "-d", "-f", &config, "-P", &pid_file])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_too)
            .spawn()
            .map_err(io_error("starting miniupnpd"))?;
        self.miniupnpd = Some(child);

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.miniupnpd.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                let problem = format!("exited ({status}) while starting");
                return Err(NatError::Miniupnpd { problem, log: self.miniupnpd_log() });
            }
            let upnp_ready = !upnp || self.run_inside(Host::Router, upnp_listening)?;
            let natpmp_ready = !natpmp_pcp || self.run_inside(Host::Home, natpmp_answers)?;
            if upnp_ready && natpmp_ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let problem = format!(
                    "not ready after {STARTUP_TIMEOUT:?} (UPnP listening: {upnp_ready}, NAT-PMP answering \
                     with {WAN_ADDRESS}: {natpmp_ready})"
                );
                return Err(NatError::Miniupnpd { problem, log: self.miniupnpd_log() });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NatBed {
    fn drop(&mut self) {
        if let Some(mut child) = self.miniupnpd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stun = None; // stops and joins its thread
        // Deleting a namespace removes its end of each veth pair, and so the pair. Each
        // step may find its part never made.
        for namespace in &self.namespaces {
            let _ = run("ip", &["netns", "del", namespace]);
        }
    }
}

/// Deletes the namespaces and temp dirs of beds whose test process died without dropping
/// them (killed, say); their miniupnpd died with it. Both are named "chat-nat-PID-...".
fn remove_stale_beds() {
    let stale = |name: &str| {
        let pid = name.strip_prefix("chat-nat-").and_then(|rest| rest.split('-').next());
        pid.is_some_and(|pid| pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists())
    };
    let names = |dir: &std::path::Path| -> Vec<String> {
        let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
        entries.map(|entry| entry.file_name().to_string_lossy().into_owned()).filter(|name| stale(name)).collect()
    };
    for namespace in names("/run/netns".as_ref()) {
        let _ = run("ip", &["netns", "del", &namespace]);
    }
    let temp = std::env::temp_dir();
    for dir in names(&temp) {
        let _ = std::fs::remove_dir_all(temp.join(dir));
    }
}

fn check_tool(tool: &'static str, package: &'static str) -> Result<(), NatError> {
    match Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => Ok(()),
        Err(_) => Err(NatError::MissingTool { tool, package }),
    }
}

fn path_str(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The router's firewall and miniupnpd's config (with `@NAME@` placeholders), shared with
/// scripts/nat_bed.sh and built into the tests, so they need no files at run time.
const ROUTER_RULESET: &str = include_str!("../../scripts/nat/router.nft");
const MINIUPNPD_CONFIG: &str = include_str!("../../scripts/nat/miniupnpd.conf");

/// The router's firewall (scripts/nat/router.nft): masquerade from the LAN out of the WAN;
/// forwarding LAN to WAN and back for established flows, WAN to LAN only where miniupnpd
/// allows it; and unsolicited packets to the router's WAN side dropped silently (no ICMP
/// errors back), like a home router. miniupnpd adds its DNAT, filter and PCP-peer SNAT rules
/// to the `upnp_` chains.
fn router_ruleset() -> String {
    check_shared_file(
        "scripts/nat/router.nft",
        ROUTER_RULESET,
        &[
            &format!("table inet {TABLE} {{"),
            &format!("chain {UPNP_FORWARD_CHAIN} {{"),
            &format!("chain {UPNP_NAT_CHAIN} {{"),
            &format!("chain {UPNP_POSTROUTING_CHAIN} {{"),
            &format!("iifname \"{ROUTER_WAN}\" jump {UPNP_NAT_CHAIN}"),
            &format!("oifname \"{ROUTER_WAN}\" ip saddr {LAN} masquerade"),
            &format!("iifname \"{ROUTER_LAN}\" oifname \"{ROUTER_WAN}\" accept"),
        ],
    );
    ROUTER_RULESET.to_string()
}

/// miniupnpd's config (scripts/nat/miniupnpd.conf): LAN and WAN interfaces, the public
/// address by STUN, the chosen protocols, and mappings only for LAN hosts to themselves on
/// unprivileged ports.
fn miniupnpd_config(upnp: bool, natpmp_pcp: bool, lease_file: &str) -> String {
    check_shared_file(
        "scripts/nat/miniupnpd.conf",
        MINIUPNPD_CONFIG,
        &[
            &format!("ext_ifname={ROUTER_WAN}\n"),
            &format!("listening_ip={ROUTER_LAN}\n"),
            &format!("http_port={UPNP_HTTP_PORT}\n"),
            &format!("ext_stun_host={OUTSIDE_ADDRESS}\n"),
            &format!("ext_stun_port={STUN_PORT}\n"),
            &format!("upnp_table_name={TABLE}\n"),
            &format!("upnp_nat_table_name={TABLE}\n"),
            &format!("upnp_forward_chain={UPNP_FORWARD_CHAIN}\n"),
            &format!("upnp_nat_chain={UPNP_NAT_CHAIN}\n"),
            &format!("upnp_nat_postrouting_chain={UPNP_POSTROUTING_CHAIN}\n"),
            &format!("allow 1024-65535 {LAN} 1024-65535\n"),
        ],
    );
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    let config = MINIUPNPD_CONFIG
        .replace("@ENABLE_UPNP@", yes_no(upnp))
        .replace("@ENABLE_NATPMP@", yes_no(natpmp_pcp))
        .replace("@LEASE_FILE@", lease_file);
    let unfilled = config.lines().filter(|line| !line.starts_with('#') && line.contains('@'));
    assert_eq!(unfilled.count(), 0, "scripts/nat/miniupnpd.conf has a placeholder nat.rs does not fill:\n{config}");
    config
}

/// Panics unless the shared `file` still names what this helper's constants say (the table,
/// chains, interfaces and addresses it reads and builds): each of `expected` must be in it.
fn check_shared_file(file: &str, text: &str, expected: &[&str]) {
    for needle in expected {
        assert!(text.contains(needle), "{file} no longer contains {needle:?}, which tests/common/nat.rs relies on");
    }
}

/// Inside the router: whether miniupnpd's UPnP HTTP port listens and its SSDP socket is
/// bound (the last one it opens for UPnP).
fn upnp_listening() -> bool {
    // /proc/thread-self/net shows this thread's namespace (/proc/self/net, the process's).
    let has_port = |file: &str, port: u16, state: &str| {
        let table = std::fs::read_to_string(format!("/proc/thread-self/net/{file}")).unwrap_or_default();
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&format!(":{port:04X}")) && fields[3] == state
        })
    };
    // The HTTP socket is IPv6 (dual stack) where the kernel has IPv6.
    (has_port("tcp", UPNP_HTTP_PORT, "0A") || has_port("tcp6", UPNP_HTTP_PORT, "0A")) && has_port("udp", 1900, "07")
}

/// Inside the home host: whether the gateway answers a NAT-PMP public address request
/// with the WAN address (so miniupnpd has done its STUN and maps ports).
fn natpmp_answers() -> bool {
    let ask = || -> std::io::Result<bool> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect((GATEWAY_LAN_ADDRESS, NATPMP_PORT))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        socket.send(&[0, 0])?;
        let mut answer = [0; 16];
        let len = socket.recv(&mut answer)?;
        Ok(len >= 12 && answer[1] == 128 && answer[2..4] == [0, 0] && answer[8..12] == WAN_ADDRESS.octets())
    };
    ask().unwrap_or(false)
}

/// Reads miniupnpd's DNAT rules from `nft -j list chain`: each matches the IP protocol
/// (`@nh,72,8`, or `meta l4proto`, or a `udp`/`tcp` payload) and `th dport`, then `dnat`.
fn parse_mappings(json: &str) -> Result<Vec<Mapping>, NatError> {
    use serde_json::Value;
    let bad = |what: &str, rule: &Value| NatError::Ruleset(format!("{what} in {rule}"));
    let document: Value = serde_json::from_str(json).map_err(|error| NatError::Ruleset(format!("{error}: {json}")))?;
    let items = document["nftables"].as_array().ok_or_else(|| NatError::Ruleset(json.to_string()))?;
    let protocol_of = |value: &Value| match (value.as_u64(), value.as_str()) {
        (Some(17), _) | (_, Some("udp")) => Some(Protocol::Udp),
        (Some(6), _) | (_, Some("tcp")) => Some(Protocol::Tcp),
        _ => None,
    };
    let mut mappings = Vec::new();
    for rule in items.iter().filter_map(|item| item.get("rule")) {
        let (mut protocol, mut external_port, mut internal) = (None, None, None);
        for expr in rule["expr"].as_array().into_iter().flatten() {
            if let Some(found) = expr.get("match") {
                let (left, right) = (&found["left"], &found["right"]);
                let payload = &left["payload"];
                let is_protocol = (payload["base"] == "nh" && payload["offset"] == 72 && payload["len"] == 8)
                    || (payload["protocol"] == "ip" && payload["field"] == "protocol")
                    || left["meta"]["key"] == "l4proto";
                if is_protocol {
                    protocol = protocol_of(right);
                } else if payload["field"] == "dport" {
                    external_port = right.as_u64().and_then(|port| u16::try_from(port).ok());
                    protocol = protocol.or_else(|| protocol_of(&payload["protocol"]));
                }
            } else if let Some(dnat) = expr.get("dnat") {
                let address = dnat["addr"].as_str().and_then(|address| address.parse().ok());
                let port = dnat["port"].as_u64().and_then(|port| u16::try_from(port).ok());
                internal = address.zip(port).map(|(address, port)| SocketAddrV4::new(address, port));
            }
        }
        mappings.push(Mapping {
            protocol: protocol.ok_or_else(|| bad("no protocol", rule))?,
            external_port: external_port.ok_or_else(|| bad("no destination port", rule))?,
            internal: internal.ok_or_else(|| bad("no dnat address and port", rule))?,
        });
    }
    Ok(mappings)
}

/// STUN's magic cookie (RFC 5389).
const STUN_MAGIC_COOKIE: u32 = 0x2112_A442;

/// A STUN server that only answers Binding requests, with the sender's address (XOR-
/// MAPPED-ADDRESS), from a socket in "outside"; stopped and joined on drop.
struct StunResponder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StunResponder {
    fn start(socket: UdpSocket) -> Result<Self, NatError> {
        socket.set_read_timeout(Some(Duration::from_millis(50))).map_err(io_error("setting a STUN read timeout"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("stun-responder".into())
            .spawn(move || {
                let mut request = [0; 1500];
                while !stopped.load(Ordering::Relaxed) {
                    match socket.recv_from(&mut request) {
                        Ok((len, from)) => {
                            if let Some(answer) = stun_answer(&request[..len], from) {
                                let _ = socket.send_to(&answer, from);
                            }
                        }
                        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        // ICMP errors from earlier answers, and the like: keep serving.
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .map_err(io_error("starting the STUN responder"))?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for StunResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The Binding success response to `request` from `from`, or `None` if it is not a
/// well-formed IPv4 Binding request.
fn stun_answer(request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let SocketAddr::V4(from) = from else { return None };
    let header: &[u8; 20] = request.get(..20)?.try_into().ok()?;
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let is_binding_request = header[..2] == [0x00, 0x01];
    let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if !is_binding_request || cookie != STUN_MAGIC_COOKIE || length % 4 != 0 || 20 + length != request.len() {
        return None;
    }
    let port = from.port() ^ (STUN_MAGIC_COOKIE >> 16) as u16;
    let address = from.ip().to_bits() ^ STUN_MAGIC_COOKIE;
    let mut answer = Vec::with_capacity(32);
    answer.extend_from_slice(&[0x01, 0x01, 0x00, 0x0C]); // Binding success, 12 bytes of attributes
    answer.extend_from_slice(&header[4..20]); // the cookie and transaction id
    answer.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]); // XOR-MAPPED-ADDRESS, IPv4
    answer.extend_from_slice(&port.to_be_bytes());
    answer.extend_from_slice(&address.to_be_bytes());
    Some(answer)
}
