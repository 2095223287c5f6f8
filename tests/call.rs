//! End-to-end calls between two `chat` processes on loopback: video both ways, busy
//! refusal, hang-up, a vanished peer, identity pinning, bad input.

mod common;

use std::time::{Duration, Instant};

use common::{Peer, number, peer_args, peer_args_with, start_caller, start_listener, strs, summary};

/// A listener with the shared test arguments and `extra`.
fn listener(dir: &std::path::Path, name: &str, extra: &[&str]) -> (Peer, u16) {
    start_listener(dir, name, peer_args_with(dir, name, extra))
}

fn caller(dir: &std::path::Path, name: &str, port: u16, extra: &[&str]) -> Peer {
    start_caller(dir, name, port, peer_args_with(dir, name, extra))
}

#[test]
fn two_way_call_delivers_video_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (a_json, b_json) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let (mut a, port) = listener(dir.path(), "a", &["--once", "--stats-json", a_json.to_str().unwrap()]);
    let mut b = caller(dir.path(), "b", port, &["--duration", "5", "--stats-json", b_json.to_str().unwrap()]);
    assert!(b.expect_exit(Duration::from_secs(30)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(10)).success(), "{}", a.describe());

    let (sa, sb) = (summary(&a_json), summary(&b_json));
    for (name, rx, tx) in [("a", &sa, &sb), ("b", &sb, &sa)] {
        let (sent, received) = (number(tx, "frames_sent"), number(rx, "frames_received"));
        assert!(sent >= 120.0, "{name}'s peer sent only {sent} frames in 5 s: {tx}");
        assert!(received >= 0.9 * sent, "{name} received {received} of {sent} frames: {rx}");
        assert!(number(rx, "psnr_db") >= 35.0, "{name}: PSNR too low: {rx}");
        assert!(number(rx, "latency_ms_p95") < 100.0, "{name}: p95 latency: {rx}");
        assert!(number(rx, "fps_received") >= 27.0, "{name}: fps: {rx}");
        assert_eq!(number(rx, "decode_errors"), 0.0, "{name}: {rx}");
    }
    assert!(a.stdout().contains("hung up"), "{}", a.describe());
    // Per-second lines come before the summary.
    let lines = std::fs::read_to_string(&b_json).unwrap();
    assert!(lines.lines().filter(|l| l.contains("\"summary\":false")).count() >= 3, "{lines}");
}

#[test]
fn a_call_stays_smooth_through_loss_delay_and_jitter() {
    use common::relay::{Impairment, UdpRelay};
    let dir = tempfile::tempdir().unwrap();
    let (a_json, b_json) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let (mut a, port) = listener(dir.path(), "a", &["--once", "--stats-json", a_json.to_str().unwrap()]);
    let impairment =
        Impairment { loss: 0.02, delay: Duration::from_millis(20), jitter: Duration::from_millis(10), seed: 7 };
    let relay = UdpRelay::start(format!("127.0.0.1:{port}").parse().unwrap(), impairment);
    let mut b = caller(dir.path(), "b", relay.port, &["--duration", "6", "--stats-json", b_json.to_str().unwrap()]);
    assert!(b.expect_exit(Duration::from_secs(30)).success(), "{}", b.describe());
    // The hang-up gets through the loss: a clean end, not a lost call.
    assert!(a.expect_exit(Duration::from_secs(3)).success(), "{}", a.describe());
    assert!(a.stdout().contains("hung up"), "{}", a.describe());
    // About 2% of roughly a thousand datagrams.
    let dropped = relay.dropped.load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped >= 5, "the relay dropped only {dropped} datagrams");

    let (sa, sb) = (summary(&a_json), summary(&b_json));
    for (name, rx, tx) in [("a", &sa, &sb), ("b", &sb, &sa)] {
        // Pictures still being retransmitted when the hang-up arrives are lost, and a
        // few more (see frames_skipped): most, not all, get through.
        let (sent, received) = (number(tx, "frames_sent"), number(rx, "frames_received"));
        assert!(received >= 0.85 * sent, "{name} received {received} of {sent}: {rx}");
        assert_eq!(number(rx, "decode_errors"), 0.0, "{name}: {rx}");
        // 20-30 ms each way, plus retransmissions: bounded, never a frozen second.
        assert!(number(rx, "latency_ms_p50") < 150.0, "{name}: {rx}");
        assert!(number(rx, "latency_ms_p95") < 1000.0, "{name}: {rx}");
        assert!(number(rx, "psnr_db") >= 35.0, "{name}: {rx}");
        // Sound is never retransmitted: lost packets are played from the copy in the next
        // datagram or concealed, the rest play.
        let heard = number(rx, "audio_packets_received");
        assert!(heard >= 400.0, "{name} heard {heard} audio packets in 6 s: {rx}");
        let (concealed, recovered) = (number(rx, "audio_concealed"), number(rx, "audio_recovered"));
        assert!(concealed + recovered > 0.0, "{name}: no lost sound: {rx}");
        assert!(concealed < 0.1 * heard, "{name}: {concealed} frames concealed: {rx}");
    }
}

#[test]
fn a_y4m_file_loops_as_the_source_and_the_record_holds_every_shown_frame() {
    use chat::media::{pattern, y4m};
    let dir = tempfile::tempdir().unwrap();
    // Ten pattern frames at 30 fps: the caller plays them in a loop for 2 s.
    let clip = dir.path().join("clip.y4m");
    let mut writer = y4m::Y4mWriter::create(&clip, 30).unwrap();
    for i in 0..10 {
        writer.write(&pattern::pattern_frame(i, 320, 240, 0)).unwrap();
    }
    writer.finish().unwrap();
    let (record, a_json) = (dir.path().join("seen.y4m"), dir.path().join("a.json"));
    let (mut a, port) = listener(
        dir.path(),
        "a",
        &["--once", "--record", record.to_str().unwrap(), "--stats-json", a_json.to_str().unwrap()],
    );
    let mut b = caller(dir.path(), "b", port, &["--duration", "2", "--source", clip.to_str().unwrap()]);
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(10)).success(), "{}", a.describe());
    assert!(b.stderr().contains("320x240 video file"), "{}", b.describe());

    let shown = number(&summary(&a_json), "frames_received") as usize;
    let mut reader = y4m::Y4mReader::open(&record).unwrap();
    assert_eq!((reader.header().width, reader.header().height), (320, 240));
    let recorded = std::fs::metadata(&record).unwrap().len() as usize;
    let frame_bytes = "FRAME\n".len() + 320 * 240 * 3 / 2;
    assert_eq!((recorded - reader.header_len()) / frame_bytes, shown, "every shown frame recorded");
    // The file looped: indexes run 0..9 and start over.
    let indexes: Vec<u32> = (0..shown).map(|_| pattern::read_index(&reader.next_frame().unwrap()).unwrap()).collect();
    assert!(shown >= 50, "{shown} frames in 2 s");
    assert!(indexes.windows(2).any(|w| w[1] < w[0]), "no wrap-around in {indexes:?}");
    assert!(indexes.iter().all(|&i| i < 10), "{indexes:?}");
    assert!(number(&summary(&a_json), "psnr_db") >= 35.0);
}

/// Ten pattern pictures at `width` x `height` as a camera would give them: an MJPEG stream
/// (4:2:2, as webcams send) or raw YUYV.
fn camera_clip(path: &std::path::Path, width: usize, height: usize) {
    use chat::media::{convert, pattern};
    let mut bytes = Vec::new();
    for i in 0..10 {
        let frame = pattern::pattern_frame(i, width, height, 0);
        if path.extension().is_some_and(|e| e == "yuyv") {
            for (row, luma) in frame.y.chunks_exact(width).enumerate() {
                let chroma = (row / 2) * (width / 2);
                for (x, pair) in luma.chunks_exact(2).enumerate() {
                    bytes.extend([pair[0], frame.u[chroma + x], pair[1], frame.v[chroma + x]]);
                }
            }
            continue;
        }
        let rgb: Vec<u8> = convert::i420_to_bgr(&frame).chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        compress.set_fastest_defaults(); // baseline JPEG, as cameras send
        compress.set_size(width, height);
        compress.set_quality(90.0);
        compress.set_chroma_sampling_pixel_sizes((2, 1), (2, 1));
        let mut started = compress.start_compress(Vec::new()).unwrap();
        started.write_scanlines(&rgb).unwrap();
        bytes.extend(started.finish().unwrap());
    }
    std::fs::write(path, bytes).unwrap();
}

/// A call whose caller sends `clip` (made by `camera_clip`) with `extra`; checks the listener
/// was shown the clip's pictures, looping, and returns the caller's start-up lines.
fn call_with_camera_clip(clip_name: &str, extra: &[&str]) -> String {
    use chat::media::{pattern, y4m};
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join(clip_name);
    camera_clip(&clip, 320, 240);
    let (record, a_json) = (dir.path().join("seen.y4m"), dir.path().join("a.json"));
    let (mut a, port) = listener(
        dir.path(),
        "a",
        &["--once", "--record", record.to_str().unwrap(), "--stats-json", a_json.to_str().unwrap()],
    );
    let mut args = vec!["--duration", "2", "--source", clip.to_str().unwrap()];
    args.extend(extra);
    let mut b = caller(dir.path(), "b", port, &args);
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(10)).success(), "{}", a.describe());

    let a_summary = summary(&a_json);
    let shown = number(&a_summary, "frames_received") as usize;
    assert!(shown >= 50, "{shown} frames in 2 s: {a_summary}");
    let mut reader = y4m::Y4mReader::open(&record).unwrap();
    assert_eq!((reader.header().width, reader.header().height), (320, 240));
    let indexes: Vec<u32> = (0..shown).map(|_| pattern::read_index(&reader.next_frame().unwrap()).unwrap()).collect();
    assert!(indexes.windows(2).any(|w| w[1] < w[0]), "no wrap-around in {indexes:?}");
    assert!(indexes.iter().all(|&i| i < 10), "{indexes:?}");
    // The pictures went through JPEG or YUYV's chroma and H.264, and still match the pattern.
    assert!(number(&a_summary, "psnr_db") >= 30.0, "{a_summary}");
    b.stderr()
}

#[test]
fn an_mjpeg_file_runs_the_cameras_path_end_to_end() {
    let started = call_with_camera_clip("clip.mjpeg", &[]);
    assert!(started.contains("320x240 MJPEG camera-like file"), "{started}");
}

#[test]
fn a_raw_yuyv_file_runs_the_cameras_path_end_to_end() {
    let started = call_with_camera_clip("clip.yuyv", &["--size", "320x240"]);
    assert!(started.contains("320x240 YUYV camera-like file"), "{started}");
}

#[test]
fn a_second_caller_is_told_busy_and_the_listener_takes_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = listener(dir.path(), "a", &[]);
    let mut first = caller(dir.path(), "first", port, &["--duration", "4"]);
    a.wait_for_line("call from", Duration::from_secs(10));

    let mut second = caller(dir.path(), "second", port, &["--duration", "2"]);
    let status = second.expect_exit(Duration::from_secs(10));
    assert!(!status.success(), "{}", second.describe());
    assert!(second.stderr().contains("busy"), "{}", second.describe());
    assert!(a.stdout().contains("already in a call"), "{}", a.describe());

    assert!(first.expect_exit(Duration::from_secs(20)).success(), "{}", first.describe());
    // The listener is free again and takes the next call.
    let mut third = caller(dir.path(), "third", port, &["--duration", "1"]);
    assert!(third.expect_exit(Duration::from_secs(20)).success(), "{}", third.describe());
    assert_eq!(a.stdout().lines().filter(|l| l.starts_with("call from")).count(), 2, "{}", a.describe());
    a.signal("INT");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
}

#[test]
fn hanging_up_ends_the_call_on_both_sides_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = listener(dir.path(), "a", &["--once"]);
    let mut b = caller(dir.path(), "b", port, &[]);
    a.wait_for_line("call from", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    // Ctrl-C on the caller hangs up cleanly.
    b.signal("INT");
    assert!(b.expect_exit(Duration::from_secs(5)).success(), "{}", b.describe());
    let hung_up = Instant::now();
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
    assert!(hung_up.elapsed() < Duration::from_secs(1), "listener took {:?}", hung_up.elapsed());
    assert!(a.stdout().contains("hung up"), "{}", a.describe());
}

#[test]
fn a_vanished_peer_is_detected_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = listener(dir.path(), "a", &["--once"]);
    let b = caller(dir.path(), "b", port, &[]);
    a.wait_for_line("call from", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    b.signal("KILL");
    let killed = Instant::now();
    let status = a.expect_exit(Duration::from_secs(8));
    assert!(killed.elapsed() <= Duration::from_secs(5) + Duration::from_millis(500), "took {:?}", killed.elapsed());
    assert!(!status.success(), "{}", a.describe());
    assert!(a.stderr().contains("lost the call"), "{}", a.describe());
}

#[test]
fn a_listener_with_a_new_identity_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = listener(dir.path(), "a", &["--once"]);
    let mut b = caller(dir.path(), "b", port, &["--duration", "1"]);
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    a.expect_exit(Duration::from_secs(5));
    let known = std::fs::read_to_string(dir.path().join("certs-b/known_peers")).unwrap();
    assert!(known.contains(&format!("127.0.0.1:{port} ")), "{known}");

    // Someone else answers on the same address.
    let mut args = peer_args(dir.path(), "impostor");
    args.extend(["--listen".to_string(), format!("127.0.0.1:{port}"), "--once".to_string()]);
    let mut impostor = Peer::start("impostor", dir.path(), &strs(&args));
    impostor.wait_for_line("listening on", Duration::from_secs(20));
    // The same caller (same certs directory) calls the same address again.
    let mut again = caller(dir.path(), "b", port, &["--duration", "1"]);
    let status = again.expect_exit(Duration::from_secs(20));
    assert!(!status.success(), "{}", again.describe());
    let err = again.stderr();
    assert!(err.contains("different identity") && err.contains("known:") && err.contains("presented:"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("certs-b/known_peers")).unwrap(), known, "file unchanged");
    // The listener says why, and a refused handshake is not the call `--once` waits for.
    impostor.wait_for_line("listening on", Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(300));
    assert!(impostor.stderr().contains("refused this peer's identity"), "{}", impostor.describe());
    assert!(impostor.wait(Duration::from_millis(200)).is_none(), "{}", impostor.describe());
}

#[test]
fn no_camera_is_a_clear_error() {
    if std::fs::read_dir("/dev").unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("video")) {
        eprintln!("this machine has a camera device: the no-camera error cannot be provoked here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let started = Instant::now();
    let mut peer = Peer::start(
        "nocam",
        dir.path(),
        &["--listen", "127.0.0.1:0", "--headless", "--source", "camera", "--certs", certs.to_str().unwrap()],
    );
    let status = peer.expect_exit(Duration::from_secs(10));
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = peer.stderr();
    assert!(err.contains("no camera") && err.contains("--source test"), "{err}");
}

#[test]
fn bad_command_lines_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (vec!["--call", "host:99999"], "not a peer address"),
        (vec!["--listen", "--size", "641x480"], "even"),
        (vec!["--listen", "--source", "clip.mp4"], ".y4m"),
        (vec!["--listen", "--fps", "0"], "--fps"),
        (vec![], "required"),
    ] {
        let mut peer = Peer::start("bad", dir.path(), &args);
        let status = peer.expect_exit(Duration::from_secs(5));
        assert_eq!(status.code(), Some(2), "{args:?}");
        assert!(peer.stderr().contains(expected), "{args:?}: {}", peer.stderr());
    }
}

#[test]
fn a_failure_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let not_mjpeg = dir.path().join("notes.mjpeg");
    std::fs::write(&not_mjpeg, "a text file, named as if it were MJPEG").unwrap();
    let (_a, port) = start_listener(dir.path(), "a", peer_args(dir.path(), "a"));
    let taken = format!("127.0.0.1:{port}");
    for (extra, cause) in [
        (vec!["--source", &format!("{}.y4m", missing.display())], "No such file or directory"),
        (vec!["--source", not_mjpeg.to_str().unwrap()], "is not an MJPEG stream at byte 0"),
        (vec!["--source", &format!("{}.yuyv", missing.display())], "No such file or directory"),
        (vec!["--audio-source", &format!("{}.wav", missing.display())], "No such file or directory"),
        (vec!["--listen", &taken], "Address already in use"),
    ] {
        let mut args = peer_args_with(dir.path(), "bad", &extra);
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"].map(String::from));
        }
        let mut peer = Peer::start("bad", dir.path(), &common::strs(&args));
        assert!(!peer.expect_exit(Duration::from_secs(10)).success(), "{extra:?}");
        let said = peer.stderr();
        assert_eq!(said.matches(cause).count(), 1, "{extra:?}: {said}");
    }
}

#[test]
fn fingerprint_is_stable_and_the_key_private() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let run = || {
        let out = std::process::Command::new(common::chat())
            .args(["--fingerprint", "--certs", certs.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first.trim().len(), 79, "{first}");
    assert_eq!(run(), first);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(certs.join("identity.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
