//! Calls through links with less room than the call asks for, or none for a while: the
//! sender fits under the link and climbs back, nothing overflows the bottleneck's queue,
//! and after an outage the call goes on with fresh pictures. Behaviour only: the figures
//! (latency, seconds to fit) are measured by `scripts/bench.sh`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::link::{Bottleneck, LinkPlan};
use common::netns::{Shape, Side, VethLink};
use common::relay::{Scenario, UdpRelay};
use common::{Peer, peer_args_with, start_caller, start_listener, strs};

const MS: Duration = Duration::from_millis(1);
/// Audio's share of the link, kbit/s (`adapt::AUDIO_KBPS`).
const AUDIO_KBPS: f64 = 40.0;

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds)
}

/// The per-second objects of a `--stats-json` file.
fn per_second(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|line| line.contains("\"summary\":false"))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A peer's seconds from its stats file, printed (shown when a test fails, or with
/// `--no-capture`).
fn seconds_of(peer: &Peer, path: &Path) -> Vec<serde_json::Value> {
    let seconds = per_second(path);
    print_seconds(&peer.name, &seconds);
    seconds
}

/// Asserts that `peer` received at least `at_least` pictures a second over `window`;
/// `when` says when, for the message.
fn assert_fps(
    peer: &Peer,
    seconds: &[serde_json::Value],
    window: std::ops::RangeInclusive<f64>,
    at_least: f64,
    when: &str,
) {
    let fps = mean_over(seconds, "fps_received", window);
    assert!(fps >= at_least, "{}: {fps} fps {when}\n{}", peer.name, peer.describe());
}

/// Prints a peer's seconds.
fn print_seconds(name: &str, seconds: &[serde_json::Value]) {
    println!(
        "{name}:   t_s   fps  p95 ms  kbps sent  target  estimate  audio concealed  recovered  m2e p95  sending    cpu %  limited by  reconnecting"
    );
    for s in seconds {
        println!(
            "{name}: {:5.1} {:5.1} {:7.0} {:10.0} {:7.0} {:9.0} {:16.0} {:10.0} {:8.0}  {:>9}  {:5.0}  {:10}  {}",
            field(s, "t_s"),
            field(s, "fps_received"),
            field(s, "latency_ms_p95"),
            field(s, "kbps_sent"),
            field(s, "target_kbps"),
            field(s, "estimate_kbps"),
            field(s, "audio_concealed"),
            field(s, "audio_recovered"),
            field(s, "mouth_to_ear_ms_p95"),
            format!("{}x{}@{}", s["send_width"], s["send_height"], s["send_fps"]),
            field(s, "cpu_usage_pct"),
            s["limited_by"].as_str().unwrap_or("-"),
            s["reconnecting"],
        );
    }
}

fn field(second: &serde_json::Value, key: &str) -> f64 {
    second[key].as_f64().unwrap_or(0.0)
}

/// The seconds whose `t_s` is in `window`; panics if there are none.
fn seconds_in(seconds: &[serde_json::Value], window: std::ops::RangeInclusive<f64>) -> Vec<&serde_json::Value> {
    let inside: Vec<_> = seconds.iter().filter(|s| window.contains(&field(s, "t_s"))).collect();
    assert!(!inside.is_empty(), "no seconds in {window:?}");
    inside
}

/// The mean of `key` over the seconds whose `t_s` is in `window`.
fn mean_over(seconds: &[serde_json::Value], key: &str, window: std::ops::RangeInclusive<f64>) -> f64 {
    let inside = seconds_in(seconds, window);
    inside.iter().map(|s| field(s, key)).sum::<f64>() / inside.len() as f64
}

/// The same plan each way.
fn both_ways(plan: LinkPlan) -> Scenario {
    Scenario { to_listener: plan.clone(), to_caller: plan, seed: 3, ..Scenario::default() }
}

/// A listener and a caller through a relay playing `scenario`; returns both peers
/// (caller exited, listener exited) and their stats files.
fn call_through_relay(dir: &Path, scenario: Scenario, seconds: u32) -> ([(Peer, std::path::PathBuf); 2], UdpRelay) {
    let (a_json, b_json) = (dir.join("a.json"), dir.join("b.json"));
    let (mut a, port) =
        start_listener(dir, "a", peer_args_with(dir, "a", &["--once", "--stats-json", a_json.to_str().unwrap()]));
    let relay = UdpRelay::with_scenario(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), scenario);
    let duration = seconds.to_string();
    let args = peer_args_with(dir, "b", &["--duration", &duration, "--stats-json", b_json.to_str().unwrap()]);
    let mut b = start_caller(dir, "b", relay.port, args);
    let b_status = b.expect_exit(Duration::from_secs(u64::from(seconds) + 40));
    let a_status = a.expect_exit(Duration::from_secs(15));
    assert!(
        b_status.success() && a_status.success(),
        "caller {b_status}, listener {a_status}\n{}\n{}",
        b.describe(),
        a.describe()
    );
    ([(a, a_json), (b, b_json)], relay)
}

#[test]
fn through_a_rate_drop_the_sender_fits_under_the_link_and_climbs_back() {
    // 3 Mbit/s, 0.5 Mbit/s from 6 s, 3 Mbit/s again from 12 s, each way, 200 ms queues.
    let limit = |rate| Some(Bottleneck::rate(rate).queue_delay(200 * MS));
    let plan = LinkPlan::default()
        .limit_from(Duration::ZERO, limit(3_000_000))
        .limit_from(secs(6.0), limit(500_000))
        .limit_from(secs(12.0), limit(3_000_000));
    let dir = tempfile::tempdir().unwrap();
    let (peers, relay) = call_through_relay(dir.path(), both_ways(plan), 18);
    for (peer, path) in &peers {
        let (name, seconds) = (&peer.name, seconds_of(peer, path));
        let before = mean_over(&seconds, "target_kbps", 3.0..=5.5);
        // Seconds well inside 6-12 s on the relay's clock, which runs a little ahead.
        let during = mean_over(&seconds, "target_kbps", 8.5..=11.5);
        assert!(during + AUDIO_KBPS < 500.0, "{name}: video target {during} kbit/s on a 0.5 Mbit/s link");
        assert_fps(peer, &seconds, 8.5..=11.5, 15.0, "through the drop");
        let after = mean_over(&seconds, "target_kbps", 16.5..=18.0);
        assert!(after >= 0.75 * before, "{name}: back at {after} kbit/s of the {before} before the drop");
    }
    // The send window holds less than the relay's queue: nothing overflowed it.
    let dropped = relay.to_listener().queue_dropped + relay.to_caller().queue_dropped;
    assert_eq!(dropped, 0, "datagrams dropped at the bottleneck's full queue");
}

#[test]
fn through_a_one_megabit_tbf_link_the_call_fits_and_the_kernel_drops_nothing() {
    let shape = Shape { rate_bps: 1_000_000, burst_bytes: 8192, latency: 200 * MS };
    let Some(link) = VethLink::create_or_skip(shape, shape) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a_json, b_json) = (dir.path().join("a.json"), dir.path().join("b.json"));
    // The ceiling is more than the link carries: 1.5 Mbit/s of video plus sound.
    let listen = format!("{}:0", link.address(Side::A));
    let a_args = peer_args_with(
        dir.path(),
        "a",
        &["--bitrate", "1500", "--once", "--stats-json", a_json.to_str().unwrap(), "--listen", &listen],
    );
    let mut a = Peer::start_in_namespace("a", dir.path(), link.namespace(Side::A), &strs(&a_args));
    let call = format!("{}:{}", link.address(Side::A), a.listening_port());
    let b_args = peer_args_with(
        dir.path(),
        "b",
        &["--bitrate", "1500", "--duration", "10", "--stats-json", b_json.to_str().unwrap(), "--call", &call],
    );
    let mut b = Peer::start_in_namespace("b", dir.path(), link.namespace(Side::B), &strs(&b_args));
    let b_status = b.expect_exit(Duration::from_secs(45));
    let a_status = a.expect_exit(Duration::from_secs(15));
    assert!(
        b_status.success() && a_status.success(),
        "caller {b_status}, listener {a_status}\n{}\n{}",
        b.describe(),
        a.describe()
    );
    for (peer, path) in [(&a, &a_json), (&b, &b_json)] {
        let (name, seconds) = (&peer.name, seconds_of(peer, path));
        let kbps = mean_over(&seconds, "kbps_sent", 2.0..=10.0);
        assert!(kbps + AUDIO_KBPS <= 1000.0, "{name}: sent {kbps} kbit/s of video through 1 Mbit/s");
        assert_fps(peer, &seconds, 2.0..=10.0, 25.0, "through 1 Mbit/s");
    }
    for side in [Side::A, Side::B] {
        let stats = link.qdisc_stats(side).unwrap();
        assert!(stats.overlimits > 0, "the link never held anything back: {stats:?}");
        assert_eq!(stats.dropped, 0, "tbf's queue overflowed: {stats:?}");
    }
}

#[test]
fn after_an_outage_the_call_says_reconnecting_and_goes_on_with_fresh_pictures() {
    // 20 ms each way, and nothing at all either way from 4 s to 6 s.
    let plan = LinkPlan { delay: 20 * MS, ..LinkPlan::default() }.outage(secs(4.0)..secs(6.0));
    let dir = tempfile::tempdir().unwrap();
    let (peers, relay) = call_through_relay(dir.path(), both_ways(plan), 10);
    assert!(relay.to_listener().outage_dropped > 0 && relay.to_caller().outage_dropped > 0);
    for (peer, path) in &peers {
        let (name, seconds) = (&peer.name, seconds_of(peer, path));
        let reconnecting: Vec<f64> =
            seconds.iter().filter(|s| s["reconnecting"] == true).map(|s| field(s, "t_s")).collect();
        assert!(
            !reconnecting.is_empty() && reconnecting.iter().all(|t| (4.0..=7.0).contains(t)),
            "{name}: reconnecting in seconds {reconnecting:?}"
        );
        // Seconds after the outage on the relay's clock, which runs a little ahead: no
        // picture that waited in the dead link is shown.
        for second in seconds_in(&seconds, 7.0..=10.0) {
            let p95 = field(second, "latency_ms_p95");
            assert!(p95 < 500.0, "{name}: a picture {p95} ms old shown after the outage, second {second}");
        }
        assert_fps(peer, &seconds, 7.5..=10.0, 25.0, "after the outage");
    }
}

#[test]
fn a_nat_rebinding_mid_call_is_survived() {
    // At 4 s the relay sends to the listener from a new port, as a NAT whose mapping changed.
    let plan = LinkPlan { delay: 20 * MS, ..LinkPlan::default() };
    let scenario = Scenario { rebind_at: vec![secs(4.0)], ..both_ways(plan) };
    let dir = tempfile::tempdir().unwrap();
    let (peers, _relay) = call_through_relay(dir.path(), scenario, 8);
    for (peer, path) in &peers {
        let seconds = seconds_of(peer, path);
        assert_fps(peer, &seconds, 5.5..=8.0, 25.0, "after the rebinding");
    }
}

#[test]
fn when_the_callers_network_goes_away_it_moves_to_a_fresh_socket_and_the_call_goes_on() {
    // At 4 s whatever comes from the caller's address is dropped: its network is gone.
    let plan = LinkPlan { delay: 20 * MS, ..LinkPlan::default() };
    let scenario = Scenario { caller_path_dies_at: vec![secs(4.0)], ..both_ways(plan) };
    let dir = tempfile::tempdir().unwrap();
    let (peers, relay) = call_through_relay(dir.path(), scenario, 10);
    assert!(relay.to_listener().outage_dropped > 0, "the old path never died");
    for (peer, path) in &peers {
        let seconds = seconds_of(peer, path);
        assert_fps(peer, &seconds, 7.5..=10.0, 25.0, "after the caller moved");
    }
}

#[test]
fn random_loss_is_not_taken_for_congestion_and_lost_sound_plays_from_the_next_packets_copy() {
    // 2 % of datagrams lost each way, 20 ms each way.
    let plan = LinkPlan { delay: 20 * MS, loss: 0.02, ..LinkPlan::default() };
    let dir = tempfile::tempdir().unwrap();
    let (peers, relay) = call_through_relay(dir.path(), both_ways(plan), 12);
    assert!(relay.to_listener().lost > 0 && relay.to_caller().lost > 0);
    let seconds = peers.each_ref().map(|(peer, path)| seconds_of(peer, path));
    for (index, (peer, _)) in peers.iter().enumerate() {
        let (name, seconds, senders) = (&peer.name, &seconds[index], &seconds[1 - index]);
        let first = mean_over(seconds, "target_kbps", 1.0..=2.5);
        let later = mean_over(seconds, "target_kbps", 6.0..=12.0);
        assert!(later >= 0.9 * first, "{name}: the target fell from {first} to {later} kbit/s under random loss");
        assert_fps(peer, seconds, 2.0..=12.0, 25.0, "under 2 % loss");
        // About 24 sound packets are lost each way. Once the sender sees the loss (its first
        // losses, at a time that is as random as they are, are made up), each datagram carries
        // the packet before it and a lost packet plays from that copy. From a second after
        // that (the jitter buffer grows a frame for the copies), about 18 are lost (5 or
        // fewer once in 10 000 calls) and a packet is made up only when its copy is lost
        // too: two lost in a row, and (more often than that alone explains) probably two
        // datagrams in one QUIC packet. In 40 such windows (20 calls) 0 to 4 were made up,
        // 1 on average, at most 22 % of those lost. Without copies every one was.
        let copies_from = senders
            .iter()
            .find(|second| second["audio_redundancy"].as_bool() == Some(true))
            .map(|second| field(second, "t_s"))
            .unwrap_or_else(|| panic!("{name}'s peer never sent copies\n{}", peer.describe()));
        // The peers' clocks start apart by the caller's set-up: well under the second allowed.
        let from = seconds.iter().find(|second| field(second, "t_s") >= copies_from + 1.0).unwrap_or_else(|| {
            panic!("{name}: no second a second after the copies began at {copies_from} s\n{}", peer.describe())
        });
        let last = seconds.last().expect("seconds");
        let recovered = field(last, "audio_recovered") - field(from, "audio_recovered");
        let concealed = field(last, "audio_concealed") - field(from, "audio_concealed");
        assert!(
            recovered >= 5.0 && concealed * 2.0 <= recovered,
            "{name}: from {} s, {recovered} frames played from copies, {concealed} concealed\n{}",
            field(from, "t_s"),
            peer.describe()
        );
    }
}

/// Pins every thread of process `pid` (and those it starts later) to the first CPU.
fn pin_to_one_cpu(pid: u32) {
    let status = std::process::Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid", "0", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset (util-linux) is installed");
    assert!(status.success(), "taskset failed for process {pid}");
}

/// Busy loops on the first CPU, stopped when dropped: another program eating the machine.
struct CpuHogs(Vec<std::process::Child>);

impl CpuHogs {
    fn start(count: usize) -> Self {
        Self(
            (0..count)
                .map(|_| {
                    let hog = std::process::Command::new("yes")
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .expect("yes (coreutils)");
                    pin_to_one_cpu(hog.id());
                    hog
                })
                .collect(),
        )
    }
}

impl Drop for CpuHogs {
    fn drop(&mut self) {
        for hog in &mut self.0 {
            let _ = hog.kill();
            let _ = hog.wait();
        }
    }
}

#[test]
fn a_machine_that_cannot_keep_up_sends_smaller_pictures_and_says_why() {
    // Both peers on one core shared with two busy loops, at 1080p30: whatever size the
    // link allows, more than the quarter of a core each peer gets.
    let _hogs = CpuHogs::start(2);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (a_json, b_json) = (dir.join("a.json"), dir.join("b.json"));
    let heavy = ["--size", "1920x1080", "--audio-source", "none"];
    let mut args = vec!["--once", "--stats-json", a_json.to_str().unwrap()];
    args.extend(heavy);
    let (mut a, port) = start_listener(dir, "a", peer_args_with(dir, "a", &args));
    pin_to_one_cpu(a.pid());
    let mut args = vec!["--duration", "12", "--stats-json", b_json.to_str().unwrap()];
    args.extend(heavy);
    let mut b = start_caller(dir, "b", port, peer_args_with(dir, "b", &args));
    pin_to_one_cpu(b.pid());
    assert!(b.expect_exit(Duration::from_secs(60)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(15)).success(), "{}", a.describe());

    for (peer, json) in [(&a, &a_json), (&b, &b_json)] {
        let seconds = seconds_of(peer, json);
        let held: Vec<_> = seconds.iter().filter(|s| s["limited_by"] == "cpu").collect();
        assert!(!held.is_empty(), "{} never said the CPU held it down:\n{seconds:#?}", peer.name);
        assert!(
            held.iter().all(|s| field(s, "send_width") < 1920.0 || field(s, "send_fps") < 60.0),
            "{}: held down by the CPU at full size and rate:\n{held:#?}",
            peer.name
        );
        assert!(held.iter().all(|s| field(s, "cpu_usage_pct") > 0.0), "{}: no usage figure", peer.name);
    }
}
