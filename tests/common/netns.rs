//! A kernel bottleneck for end-to-end tests: two network namespaces joined by a veth pair,
//! each end shaped by a `tbf` qdisc (rate, burst, latency), with private addresses that
//! exist only inside the namespaces. Everything is removed when the link is dropped, also
//! while a failed test unwinds. Needs root and iproute2 (`ip`, `tc`); without them
//! `VethLink::create_or_skip` says so in one line and the test skips.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A `tbf` qdisc's shape: what one end of the veth pair may send.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Token rate in bits per second (bytes on the wire, Ethernet header included).
    pub rate_bps: u64,
    /// Bucket size in bytes: how much may leave at once after a quiet spell (at least one
    /// full frame, 1514 bytes).
    pub burst_bytes: u32,
    /// Longest a packet may wait in the qdisc's queue; the kernel sizes the queue from it.
    pub latency: Duration,
}

/// One of the two namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// A `tc -s qdisc` reading for one end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QdiscStats {
    /// Bytes the qdisc has let through.
    pub sent_bytes: u64,
    /// Packets the qdisc has let through.
    pub sent_packets: u64,
    /// Packets it dropped because its queue was full.
    pub dropped: u64,
    /// Times a packet had to wait for tokens: the rate limit at work.
    pub overlimits: u64,
}

/// Why a link could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Not root: creating namespaces and qdiscs needs it.
    #[error("network namespace tests skipped: not root (effective uid {0}); CI runs them as root")]
    NotRoot(u32),
    /// `ip` or `tc` is not installed.
    #[error("network namespace tests skipped: `{0}` not found (scripts/setup.sh installs iproute2)")]
    MissingTool(&'static str),
    /// An `ip` or `tc` command failed.
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    /// Moving a thread into a namespace failed.
    #[error("entering network namespace {namespace}: {source}")]
    Enter { namespace: String, source: std::io::Error },
    /// `tc -s qdisc` printed something this helper cannot read.
    #[error("cannot read qdisc statistics from: {0}")]
    Stats(String),
}

impl NetnsError {
    /// Whether this machine cannot run namespace tests at all (as opposed to a failure).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::NotRoot(_) | Self::MissingTool(_))
    }
}

/// The addresses of sides A and B, on the veth pair (a /24 that exists only inside the two
/// namespaces, so every link can use the same one).
const ADDRESSES: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 2)];

/// Numbers the links this process makes, so their names never collide.
static NEXT_LINK: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a shaped veth pair; removed on drop.
pub struct VethLink {
    namespaces: [String; 2],
    devices: [String; 2],
}

impl VethLink {
    /// Builds the link: side A sends to B through `a_to_b`, B to A through `b_to_a`.
    pub fn create(a_to_b: Shape, b_to_a: Shape) -> Result<Self, NetnsError> {
        check_available()?;
        let (pid, n) = (std::process::id(), NEXT_LINK.fetch_add(1, Ordering::Relaxed));
        // Device names have at most 15 bytes: "vt" + pid (7 digits at most) + n + side.
        let link = Self {
            namespaces: [format!("chat-test-{pid}-{n}-a"), format!("chat-test-{pid}-{n}-b")],
            devices: [format!("vt{pid}x{n}a"), format!("vt{pid}x{n}b")],
        };
        // From here on, dropping `link` removes whatever part of it was made.
        let [(ns_a, dev_a), (ns_b, dev_b)] = [0, 1].map(|i| (link.namespaces[i].as_str(), link.devices[i].as_str()));
        run("ip", &["netns", "add", ns_a])?;
        run("ip", &["netns", "add", ns_b])?;
        run("ip", &["-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b])?;
        for (i, shape) in [a_to_b, b_to_a].into_iter().enumerate() {
            let (ns, dev) = (link.namespaces[i].as_str(), link.devices[i].as_str());
            let address = format!("{}/24", ADDRESSES[i]);
            run("ip", &["-n", ns, "addr", "add", &address, "dev", dev])?;
            run("ip", &["-n", ns, "link", "set", dev, "up"])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
            let (rate, burst) = (format!("{}bit", shape.rate_bps), shape.burst_bytes.to_string());
            let latency = format!("{}us", shape.latency.as_micros());
            let tbf = ["qdisc", "add", "dev", dev, "root", "tbf", "rate", &rate, "burst", &burst, "latency", &latency];
            run("tc", &[&["-n", ns][..], &tbf[..]].concat())?;
        }
        Ok(link)
    }

    /// `create`, or `None` after one line on stderr saying why this machine cannot (not
    /// root, no iproute2); any other failure panics.
    pub fn create_or_skip(a_to_b: Shape, b_to_a: Shape) -> Option<Self> {
        match Self::create(a_to_b, b_to_a) {
            Ok(link) => Some(link),
            Err(error) if error.is_unavailable() => {
                eprintln!("{error}");
                None
            }
            Err(error) => panic!("building the veth link: {error}"),
        }
    }

    /// The namespace's name, for `ip netns exec NAME ...`.
    pub fn namespace(&self, side: Side) -> &str {
        &self.namespaces[index(side)]
    }

    /// The side's address on the veth pair.
    pub fn address(&self, side: Side) -> Ipv4Addr {
        ADDRESSES[index(side)]
    }

    /// Runs `work` on a thread inside the side's namespace and returns its result. Sockets
    /// it opens stay in that namespace, so any thread can use them afterwards.
    pub fn run_inside<T: Send>(&self, side: Side, work: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        run_in_namespace(self.namespace(side), work)
    }

    /// What the side's qdisc has done so far.
    pub fn qdisc_stats(&self, side: Side) -> Result<QdiscStats, NetnsError> {
        let (ns, dev) = (self.namespace(side), self.devices[index(side)].as_str());
        let text = run("tc", &["-n", ns, "-s", "qdisc", "show", "dev", dev])?;
        parse_qdisc_stats(&text).ok_or(NetnsError::Stats(text))
    }
}

impl Drop for VethLink {
    fn drop(&mut self) {
        // Deleting one end removes both; deleting a namespace removes what is left in it.
        // Each step may find its part never made.
        let _ = run("ip", &["-n", &self.namespaces[0], "link", "del", &self.devices[0]]);
        for namespace in &self.namespaces {
            let _ = run("ip", &["netns", "del", namespace]);
        }
    }
}

/// Runs `work` on a thread inside the network namespace `namespace` and returns its result.
/// Sockets it opens stay in that namespace, so any thread can use them afterwards.
pub fn run_in_namespace<T: Send>(namespace: &str, work: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    let enter_error = |source| NetnsError::Enter { namespace: namespace.to_string(), source };
    let handle = File::open(format!("/run/netns/{namespace}")).map_err(enter_error)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                rustix::thread::move_into_link_name_space(
                    handle.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|errno| enter_error(errno.into()))?;
                Ok(work())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Whether a namespace of this name exists.
pub fn namespace_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// Whether this machine can build namespaces: root, with iproute2's `ip` and `tc`.
pub fn check_available() -> Result<(), NetnsError> {
    let uid = rustix::process::geteuid().as_raw();
    if uid != 0 {
        return Err(NetnsError::NotRoot(uid));
    }
    for tool in ["ip", "tc"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Err(NetnsError::MissingTool(tool));
        }
    }
    Ok(())
}

/// Runs a command to completion; its stdout, or what it said on failure.
pub fn run(program: &str, args: &[&str]) -> Result<String, NetnsError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| NetnsError::Command { command: command.clone(), stderr: error.to_string() })?;
    if !output.status.success() {
        return Err(NetnsError::Command {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Reads " Sent 123 bytes 4 pkt (dropped 5, overlimits 6 requeues 0)" from `tc -s qdisc`.
fn parse_qdisc_stats(text: &str) -> Option<QdiscStats> {
    let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')').collect();
    let after = |key: &str| -> Option<u64> {
        let at = words.iter().position(|word| *word == key)?;
        words[at + 1..].iter().find(|word| !word.is_empty())?.parse().ok()
    };
    let sent_packets = {
        let at = words.iter().position(|word| *word == "pkt")?;
        words[..at].iter().rev().find(|word| !word.is_empty())?.parse().ok()?
    };
    Some(QdiscStats {
        sent_bytes: after("Sent")?,
        sent_packets,
        dropped: after("dropped")?,
        overlimits: after("overlimits")?,
    })
}
