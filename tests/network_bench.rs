//! The network section of `scripts/bench.sh`: a 1280x720, 30 fps call with a tone each way
//! through each of issue 10's impaired links, once adapting and once with `--no-adapt` (the
//! same link and seed). Each test writes both peers' `--stats-json` files, their output,
//! and a `scenario.json` describing the link over the call's time, under
//! `$BENCH_NET_OUT/SCENARIO/` (default `target/tmp/network_bench/`), for the bench's table
//! and `scripts/plot_stats`. Ignored, as they take minutes:
//! `cargo test --release --test network_bench -- --ignored --test-threads 1 [SCENARIO...]`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use common::link::{Bottleneck, LinkPlan};
use common::netns::{Shape, Side, VethLink};
use common::relay::{Scenario, UdpRelay};
use common::{Peer, peer_args_with, start_caller, start_listener, strs};
use serde_json::json;

const MS: Duration = Duration::from_millis(1);

/// The relay's random choices (loss), the same for both modes of a scenario.
const SEED: u64 = 10;

/// How long the caller may take beyond its call to hang up, and the listener after that.
const CALLER_GRACE: Duration = Duration::from_secs(30);
const LISTENER_GRACE: Duration = Duration::from_secs(15);

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds)
}

/// How the two peers are joined.
enum Link {
    /// Through the UDP relay on loopback, the same plan each way.
    Relay(LinkPlan),
    /// Through a veth pair between two network namespaces, this tbf shape each way.
    Tbf(Shape),
}

/// One benchmark scenario: its link, the call's length, and when (if ever) the link gets
/// worse and recovers, in seconds of the relay's clock (the call's, give or take the
/// handshake).
struct Bench {
    name: &'static str,
    description: &'static str,
    link: Link,
    call_s: u32,
    worse_at_s: Option<f64>,
    recovers_at_s: Option<f64>,
}

/// A peer's arguments: 720p30 with a tone each way (`peer_args`), the mode's, and `extra`.
fn bench_args(certs: &Path, name: &str, mode: Mode, stats: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--size", "1280x720", "--fps", "30", "--stats-json", stats.to_str().unwrap()];
    args.extend(mode.args());
    args.extend(extra);
    peer_args_with(certs, name, &args)
}

/// The call with the rate controller on (the default) or off.
#[derive(Clone, Copy)]
enum Mode {
    Adaptive,
    Fixed,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Adaptive => "adaptive",
            Mode::Fixed => "fixed",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Mode::Adaptive => &[],
            Mode::Fixed => &["--no-adapt"],
        }
    }
}

impl Bench {
    /// Runs the call in both modes and writes `scenario.json`; panics, with the peers'
    /// output, if a peer wrote no per-second figures or no summary.
    fn run(&self) {
        let out = std::env::var_os("BENCH_NET_OUT")
            .map_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("network_bench"), PathBuf::from)
            .join(self.name);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("scenario.json"), self.scenario_json().to_string() + "\n").unwrap();
        for mode in [Mode::Adaptive, Mode::Fixed] {
            let dir = out.join(mode.name());
            // Nothing from an earlier run may pass for this one's figures.
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let certs = tempfile::tempdir().unwrap();
            let peers = match &self.link {
                Link::Relay(plan) => self.call_through_relay(&dir, certs.path(), mode, plan),
                Link::Tbf(shape) => match VethLink::create_or_skip(*shape, *shape) {
                    Some(link) => self.call_through_tbf(&dir, certs.path(), mode, &link),
                    None => return,
                },
            };
            for (peer, status) in &peers {
                let stats = dir.join(format!("{}.json", peer.name));
                let text = std::fs::read_to_string(&stats).unwrap_or_default();
                let seconds = text.lines().filter(|line| line.contains("\"summary\":false")).count();
                assert!(
                    seconds > 0 && text.contains("\"summary\":true"),
                    "{} {}: peer {} ({status}) wrote {seconds} per-second lines and {} summary to {}\n{}",
                    self.name,
                    mode.name(),
                    peer.name,
                    if text.contains("\"summary\":true") { "a" } else { "no" },
                    stats.display(),
                    peer.describe()
                );
            }
            let [(a, a_status), (b, b_status)] = &peers;
            println!("{} {}: {} {a_status}, {} {b_status}; {}", self.name, mode.name(), a.name, b.name, dir.display());
        }
    }

    /// The call through the relay: listener `a`, caller `b`.
    fn call_through_relay(&self, dir: &Path, certs: &Path, mode: Mode, plan: &LinkPlan) -> [(Peer, ExitStatus); 2] {
        let a_args = bench_args(certs, "a", mode, &dir.join("a.json"), &["--once"]);
        let (mut a, port) = start_listener(dir, "a", a_args);
        let relay = UdpRelay::with_scenario(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Scenario { to_listener: plan.clone(), to_caller: plan.clone(), seed: SEED, ..Scenario::default() },
        );
        let duration = self.call_s.to_string();
        let b_args = bench_args(certs, "b", mode, &dir.join("b.json"), &["--duration", &duration]);
        let mut b = start_caller(dir, "b", relay.port, b_args);
        let b_status = b.expect_exit(secs(f64::from(self.call_s)) + CALLER_GRACE);
        let a_status = a.expect_exit(LISTENER_GRACE);
        println!(
            "{} {}: to listener {:?}, to caller {:?}",
            self.name,
            mode.name(),
            relay.to_listener(),
            relay.to_caller()
        );
        [(a, a_status), (b, b_status)]
    }

    /// The call through the tbf link: listener `a` in side A's namespace, caller `b` in B's.
    fn call_through_tbf(&self, dir: &Path, certs: &Path, mode: Mode, link: &VethLink) -> [(Peer, ExitStatus); 2] {
        let listen = format!("{}:0", link.address(Side::A));
        let a_args = bench_args(certs, "a", mode, &dir.join("a.json"), &["--once", "--listen", &listen]);
        let mut a = Peer::start_in_namespace("a", dir, link.namespace(Side::A), &strs(&a_args));
        let call = format!("{}:{}", link.address(Side::A), a.listening_port());
        let duration = self.call_s.to_string();
        let b_args = bench_args(certs, "b", mode, &dir.join("b.json"), &["--duration", &duration, "--call", &call]);
        let mut b = Peer::start_in_namespace("b", dir, link.namespace(Side::B), &strs(&b_args));
        let b_status = b.expect_exit(secs(f64::from(self.call_s)) + CALLER_GRACE);
        let a_status = a.expect_exit(LISTENER_GRACE);
        let qdiscs = [Side::A, Side::B].map(|side| link.qdisc_stats(side).unwrap());
        println!("{} {}: qdisc a {:?}, qdisc b {:?}", self.name, mode.name(), qdiscs[0], qdiscs[1]);
        [(a, a_status), (b, b_status)]
    }

    /// What `scripts/plot_stats --capacity` and the bench's table read: the link's rate
    /// over time (`null`: no limit), its outages, loss and delay, and when it gets worse
    /// and recovers. Times in seconds since the link started.
    fn scenario_json(&self) -> serde_json::Value {
        let (link, capacity, outages, loss, delay_ms, queue_ms) = match &self.link {
            Link::Relay(plan) => {
                let capacity: Vec<_> = plan
                    .bottleneck
                    .iter()
                    .map(|(from, limit)| json!([from.as_secs_f64(), limit.map(|limit| limit.rate_bps / 1000)]))
                    .collect();
                let outages: Vec<_> = plan
                    .outages
                    .iter()
                    .map(|window| json!([window.start.as_secs_f64(), window.end.as_secs_f64()]))
                    .collect();
                let queue_ms = plan.bottleneck.iter().find_map(|(_, limit)| limit.and_then(|l| l.max_queue_delay));
                ("relay", capacity, outages, plan.loss, plan.delay.as_millis(), queue_ms.map(|q| q.as_millis()))
            }
            Link::Tbf(shape) => {
                ("tbf", vec![json!([0.0, shape.rate_bps / 1000])], Vec::new(), 0.0, 0, Some(shape.latency.as_millis()))
            }
        };
        json!({
            "scenario": self.name,
            "description": self.description,
            "link": link,
            "call_s": self.call_s,
            "capacity_kbps": capacity,
            "outages_s": outages,
            "loss": loss,
            "delay_ms": delay_ms,
            "queue_ms": queue_ms,
            "worse_at_s": self.worse_at_s,
            "recovers_at_s": self.recovers_at_s,
        })
    }
}

#[test]
#[ignore = "a benchmark of a minute and more: scripts/bench.sh runs it"]
fn drop() {
    let limit = |rate| Some(Bottleneck::rate(rate).queue_delay(300 * MS));
    let plan = LinkPlan { delay: 20 * MS, ..LinkPlan::default() }
        .limit_from(Duration::ZERO, limit(3_000_000))
        .limit_from(secs(12.0), limit(500_000))
        .limit_from(secs(24.0), limit(3_000_000));
    Bench {
        name: "drop",
        description: "relay, 20 ms each way, 300 ms queue: 3 Mbit/s, 0.5 Mbit/s from 12 s, 3 Mbit/s from 24 s",
        link: Link::Relay(plan),
        call_s: 36,
        worse_at_s: Some(12.0),
        recovers_at_s: Some(24.0),
    }
    .run();
}

#[test]
#[ignore = "a benchmark of a minute and more: scripts/bench.sh runs it"]
fn tbf_1mbit() {
    let shape = Shape { rate_bps: 1_000_000, burst_bytes: 8192, latency: 200 * MS };
    Bench {
        name: "tbf_1mbit",
        description: "kernel tbf, 1 Mbit/s each way (Ethernet frames counted), 200 ms queue",
        link: Link::Tbf(shape),
        call_s: 20,
        worse_at_s: None,
        recovers_at_s: None,
    }
    .run();
}

#[test]
#[ignore = "a benchmark of a minute and more: scripts/bench.sh runs it"]
fn outage() {
    let plan = LinkPlan { delay: 20 * MS, ..LinkPlan::default() }.outage(secs(8.0)..secs(10.0));
    Bench {
        name: "outage",
        description: "relay, 20 ms each way, everything dropped both ways from 8 s to 10 s",
        link: Link::Relay(plan),
        call_s: 16,
        worse_at_s: Some(8.0),
        recovers_at_s: Some(10.0),
    }
    .run();
}

#[test]
#[ignore = "a benchmark of a minute and more: scripts/bench.sh runs it"]
fn loss2() {
    let plan = LinkPlan { loss: 0.02, delay: 20 * MS, ..LinkPlan::default() };
    Bench {
        name: "loss2",
        description: "relay, 2 % random loss and 20 ms each way",
        link: Link::Relay(plan),
        call_s: 20,
        worse_at_s: None,
        recovers_at_s: None,
    }
    .run();
}
