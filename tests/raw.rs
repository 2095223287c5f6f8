//! Raw mode end to end: two chat peers, chat against the original Python streamer in both
//! directions (../shared/seed/run.sh), and hostile peers that must be refused cleanly
//! while the listener keeps serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Peer, number, peer_args_with, start_caller, start_listener, summary};

fn raw_listener(dir: &Path, name: &str, extra: &[&str]) -> (Peer, u16) {
    start_listener(dir, name, peer_args_with(dir, name, &[extra, &["--raw"]].concat()))
}

fn raw_caller(dir: &Path, name: &str, port: u16, extra: &[&str]) -> Peer {
    start_caller(dir, name, port, peer_args_with(dir, name, &[extra, &["--raw"]].concat()))
}

fn seed_script() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seed/run.sh");
    assert!(
        script.exists(),
        "the original streamer is missing: {} (CI has ../shared beside the clone)",
        script.display()
    );
    script
}

/// A free TCP port on loopback (the seed server cannot rebind one in TIME_WAIT).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The seed's run.sh in a process group of its own, killed as a group on drop
/// (run.sh runs python under `timeout`, which does not pass a kill on).
struct Seed(Child);

impl Seed {
    fn start(args: &[&str]) -> Self {
        use std::os::unix::process::CommandExt;
        let child = Command::new(seed_script())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting ../shared/seed/run.sh");
        Self(child)
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

#[test]
fn two_chat_peers_call_each_other_in_raw_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (a_json, b_json) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let (mut a, port) = raw_listener(dir.path(), "a", &["--once", "--stats-json", a_json.to_str().unwrap()]);
    assert!(a.stderr().contains("UNENCRYPTED"), "{}", a.describe());
    let mut b = raw_caller(dir.path(), "b", port, &["--duration", "3", "--stats-json", b_json.to_str().unwrap()]);
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(10)).success(), "{}", a.describe());
    let (sa, sb) = (summary(&a_json), summary(&b_json));
    for (name, rx, tx) in [("a", &sa, &sb), ("b", &sb, &sa)] {
        let (sent, received) = (number(tx, "frames_sent"), number(rx, "frames_received"));
        assert!(sent >= 70.0 && received >= 0.9 * sent, "{name}: {received} of {sent}: {rx}");
        // Lossless on the wire; the only loss is I420 <-> BGR conversion.
        assert!(number(rx, "psnr_db") >= 35.0, "{name}: {rx}");
    }
}

#[test]
fn the_original_client_watches_our_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = raw_listener(dir.path(), "a", &["--once", "--size", "320x240"]);
    let log = dir.path().join("seen.txt");
    let client = Seed::start(&["client", "--port", &port.to_string(), "--log", log.to_str().unwrap()]);
    a.wait_for_line("raw call from", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    drop(client); // the client never hangs up by itself
    assert!(a.expect_exit(Duration::from_secs(10)).success(), "{}", a.describe());

    // Every picture the client showed is one of our pattern pictures, whole and in order.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 60, "the client showed {} pictures in 3 s:\n{text}", lines.len());
    let expected: std::collections::HashMap<String, u32> = (0..3000)
        .map(|i| {
            let frame = chat::media::pattern::pattern_frame(i, 320, 240, 0);
            (format!("{:08x}", crc32fast::hash(&chat::media::convert::i420_to_bgr(&frame))), i)
        })
        .collect();
    let mut last = None;
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&fields[1..3], ["240x320x3", "uint8"], "{line}");
        let index = *expected.get(fields[3]).unwrap_or_else(|| panic!("not a picture we sent: {line}"));
        assert!(last.is_none_or(|l| index > l), "out of order: {line} after {last:?}");
        last = Some(index);
    }
}

#[test]
fn our_caller_watches_the_original_server_while_it_never_reads() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Seed::start(&["server", "--port", &port.to_string(), "--frames", "60", "--size", "320x240"]);
    // Wait for it to listen without connecting to it: it serves exactly one client.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("ss").args(["-ltn"]).output().unwrap();
        if String::from_utf8_lossy(&out.stdout).contains(&format!("127.0.0.1:{port} ")) {
            break;
        }
        assert!(Instant::now() < deadline, "the seed server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = dir.path().join("b.json");
    // Our caller sends 640x480 pictures the server never reads: only our writer may block.
    let mut b = raw_caller(dir.path(), "b", port, &["--stats-json", json.to_str().unwrap()]);
    assert!(b.expect_exit(Duration::from_secs(30)).success(), "{}", b.describe());
    drop(server);
    let s = summary(&json);
    // The server exits with our unread pictures in its socket, so its kernel resets the
    // connection and may cut its own last picture short: all but that one arrive, and
    // the user is told which was dropped.
    let received = number(&s, "frames_received");
    assert!(
        received == 60.0 || (received == 59.0 && b.stderr().contains("that picture was dropped")),
        "{s}\n{}",
        b.describe()
    );
    assert_eq!(number(&s, "frames_skipped"), 0.0, "{s}");
    // Every pixel as the server's camera made it, and latency read from its stamp.
    assert_eq!(number(&s, "psnr_db"), 100.0, "{s}");
    assert!(number(&s, "latency_ms_p95") < 100.0, "{s}");
    assert!(b.stdout().contains("hung up"), "{}", b.describe());
}

/// Sends `bytes` to a raw listener and returns what the listener said about it.
fn send_hostile(port: u16, bytes: &[u8], then_wait: bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(bytes).unwrap();
    if then_wait {
        // Stall: the listener must give up on its own.
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    } else {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    // The listener closes the connection (EOF or reset), after sending pictures or not.
    let started = Instant::now();
    let mut sink = [0u8; 65536];
    loop {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(started.elapsed() < Duration::from_secs(15), "listener did not close"),
        }
    }
}

/// The first `chat: ` line the listener wrote after the first `from` bytes of its stderr.
fn verdict(a: &Peer, from: usize) -> Option<String> {
    a.stderr().get(from..)?.lines().find(|l| l.starts_with("chat: ")).map(str::to_string)
}

/// A real raw caller is served after a peer was dropped: pictures both ways.
fn next_caller_is_served(dir: &Path, a: &Peer, port: u16) {
    let json = dir.join("b.json");
    let mut b = raw_caller(dir, "b", port, &["--duration", "2", "--stats-json", json.to_str().unwrap()]);
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}\n{}", b.describe(), a.describe());
    let s = summary(&json);
    assert!(number(&s, "frames_received") > 0.0 && number(&s, "frames_sent") > 0.0, "{s}");
}

/// Waits until the listener has given its verdict on every call it took (it gives it once
/// it is free for the next).
fn wait_until_free(a: &Peer, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = a.stdout().lines().filter(|l| l.starts_with("raw call from")).count();
        let ended = a.stdout().lines().filter(|l| l.ends_with("hung up")).count()
            + a.stderr().lines().filter(|l| l.starts_with("chat: call with")).count();
        if ended == calls {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: no verdict\n{}", a.describe());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn hostile_peers_are_refused_and_the_listener_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = raw_listener(dir.path(), "a", &["--size", "320x240"]);
    let fixture = |name: &str| {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pickles").join(name)).unwrap()
    };
    let system = b"\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\necho pwned\x94\x85\x94R\x94.";
    let mut object_dtype = fixture("numpy2-p4-c.pkl");
    let at = object_dtype.windows(2).position(|w| w == b"u1").unwrap();
    object_dtype[at..at + 2].copy_from_slice(b"O8");
    let good = fixture("numpy2-p3-c.pkl");
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        ("os.system", framed(system), false, "posix.system"),
        ("object dtype", framed(&object_dtype), false, "dtype"),
        ("length 0", 0u64.to_le_bytes().to_vec(), false, "empty frame"),
        ("length 2^63", (1u64 << 63).to_le_bytes().to_vec(), false, "above the limit"),
        ("length 2^64-1", u64::MAX.to_le_bytes().to_vec(), false, "above the limit"),
        ("header cut after 3 bytes", vec![9, 0, 0], false, "middle of a frame"),
        ("frame cut in the middle", framed(&good)[..good.len() / 2].to_vec(), false, "middle of a frame"),
        ("stall in the middle", framed(&good)[..good.len() / 2].to_vec(), true, "stalled"),
    ];
    for (what, bytes, stall, reason) in cases {
        let before = a.stderr().len();
        send_hostile(port, &bytes, stall);
        // The listener says why it dropped the peer, and goes on listening.
        wait_until_free(&a, what);
        let said = a.stderr()[before..].to_string();
        assert!(said.lines().any(|l| l.starts_with("chat: ")), "{what}: no verdict in {said:?}");
        assert!(said.contains(reason), "{what}: expected {reason:?} in {said:?}");
    }
    // A well-formed picture from a peer that then hangs up is fine.
    send_hostile(port, &framed(&good), false);
    wait_until_free(&a, "a good picture");
    // And a real call still works.
    let mut b = raw_caller(dir.path(), "b", port, &["--duration", "1"]);
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}

#[test]
fn a_peer_that_sends_a_byte_a_second_is_dropped_and_the_next_caller_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = raw_listener(dir.path(), "a", &["--size", "320x240"]);
    // It never reads, and sends the length of a frame a byte a second: every byte is
    // progress, but the length is not complete within 5 s.
    let mut drip = TcpStream::connect(("127.0.0.1", port)).unwrap();
    a.wait_for_line("raw call from", Duration::from_secs(10));
    let before = a.stderr().len();
    let started = Instant::now();
    let mut sent = 0;
    let said = loop {
        if let Some(line) = verdict(&a, before) {
            break line;
        }
        if started.elapsed() >= Duration::from_secs(sent) {
            // Once dropped, writing fails: the verdict says why.
            let _ = drip.write_all(&[100u64.to_le_bytes()[sent as usize % 8]]);
            sent += 1;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no verdict\n{}", a.describe());
        std::thread::sleep(Duration::from_millis(20));
    };
    let after = started.elapsed();
    assert!(said.contains("did not complete its 8-byte length within 5 s"), "{said}");
    assert!(after >= Duration::from_secs(5) && after < Duration::from_secs(8), "dropped after {after:?}: {said}");
    next_caller_is_served(dir.path(), &a, port);
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}

#[test]
fn a_peer_that_neither_sends_nor_reads_is_dropped_and_the_next_caller_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = raw_listener(dir.path(), "a", &["--size", "320x240"]);
    let before = a.stderr().len();
    let started = Instant::now();
    let silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    a.wait_for_line("raw call from", Duration::from_secs(10));
    // Our pictures fill the socket buffers at once; then nothing moves either way.
    let said = loop {
        if let Some(line) = verdict(&a, before) {
            break line;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no verdict\n{}", a.describe());
        std::thread::sleep(Duration::from_millis(20));
    };
    let after = started.elapsed();
    assert!(said.contains("sent no picture and took none of ours for 5 s"), "{said}");
    assert!(after >= Duration::from_secs(5), "dropped after {after:?}: {said}");
    drop(silent);
    next_caller_is_served(dir.path(), &a, port);
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}

#[test]
fn a_caller_refused_by_a_busy_listener_says_so_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = raw_listener(dir.path(), "a", &["--size", "320x240"]);
    let mut b = raw_caller(dir.path(), "b", port, &["--duration", "8", "--size", "320x240"]);
    a.wait_for_line("raw call from", Duration::from_secs(20));
    let mut c = raw_caller(dir.path(), "c", port, &["--size", "320x240"]);
    assert!(!c.expect_exit(Duration::from_secs(10)).success(), "{}", c.describe());
    let said = c.stderr();
    assert!(
        said.contains("the listener closed the connection at once")
            && said.contains("it may be busy with another raw call; try again later"),
        "{}",
        c.describe()
    );
    a.wait_for_line("refused a raw call from", Duration::from_secs(5));
    // The call that carried pictures ends normally.
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}\n{}", b.describe(), a.describe());
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}
