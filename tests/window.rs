//! The window under Xvfb: it opens, shows the waiting view, then the call with its live
//! figures in the title, takes M and V, and closes when the call ends. Needs Xvfb,
//! xwininfo and xdotool (scripts/setup.sh installs them).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Peer, peer_args, start_listener_with_env, strs};

/// A private X server on a display number it picks itself, stopped on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts Xvfb with `-displayfd 1`: the server takes the first display number that is
    /// free, reclaiming lock files left by servers that died, and writes it to its stdout
    /// once it accepts connections. Choosing the number here from `/tmp/.X*-lock` ran out
    /// of numbers once a hundred killed servers had left their locks behind.
    fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is not installed: run scripts/setup.sh");
        let mut number = String::new();
        let stdout = child.stdout.take().expect("Xvfb's stdout");
        let read = BufReader::new(stdout).read_line(&mut number);
        let mut xvfb = Self { child, display: format!(":{}", number.trim()) };
        if read.is_err() || number.trim().parse::<u32>().is_err() {
            let status = xvfb.child.try_wait();
            panic!("Xvfb did not say which display it took (read {number:?}, {read:?}; status {status:?})");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while xvfb.window_titles().is_none() {
            assert!(Instant::now() < deadline, "Xvfb did not answer on {}", xvfb.display);
            std::thread::sleep(Duration::from_millis(50));
        }
        xvfb
    }

    /// Titles of all windows, or `None` if the server does not answer yet.
    fn window_titles(&self) -> Option<Vec<String>> {
        let out = Command::new("xwininfo")
            .args(["-root", "-tree", "-display", &self.display])
            .stderr(Stdio::null())
            .output()
            .expect("xwininfo is not installed: run scripts/setup.sh");
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split('"').nth(1).map(str::to_string))
                .collect()
        })
    }

    fn wait_for_title(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let titles = self.window_titles().unwrap_or_default();
            if let Some(title) = titles.iter().find(|t| t.starts_with(prefix)) {
                return title.clone();
            }
            assert!(Instant::now() < deadline, "no window titled {prefix:?}; windows: {titles:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Xvfb {
    /// Peer A, listening (`--once`) with its window on this display.
    fn windowed_listener(&self, dir: &std::path::Path) -> (Peer, u16) {
        let mut args: Vec<String> = peer_args(dir, "a").into_iter().filter(|a| a != "--headless").collect();
        args.push("--once".into());
        start_listener_with_env(dir, "a", args, &[("DISPLAY", &self.display)])
    }

    /// Presses and releases `key` in the window whose title starts with `prefix` (with no
    /// window manager, the keyboard goes to the window under the pointer).
    fn press(&self, prefix: &str, key: &str) {
        let status = Command::new("xdotool")
            .args(["search", "--name", &format!("^{prefix}"), "mousemove", "--window", "%1", "100", "100"])
            .args(["keydown", key, "sleep", "0.1", "keyup", key])
            .env("DISPLAY", &self.display)
            .status()
            .expect("xdotool is not installed: run scripts/setup.sh");
        assert!(status.success(), "xdotool could not press {key}");
    }
}

impl Drop for Xvfb {
    /// Stops the server with SIGTERM, so that it removes its lock file and socket (SIGKILL
    /// leaves both behind), and kills it if it has not gone within a few seconds.
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_window_shows_the_waiting_view_then_the_call() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = xvfb.windowed_listener(dir.path());
    xvfb.wait_for_title("chat - waiting for a call", Duration::from_secs(10));

    let mut b_args = peer_args(dir.path(), "b");
    b_args.extend(["--call".to_string(), format!("127.0.0.1:{port}"), "--duration".into(), "4".into()]);
    let mut b = Peer::start("b", dir.path(), &strs(&b_args));
    let title = xvfb.wait_for_title("chat - in a call with", Duration::from_secs(10));
    // Live figures reach the title within a couple of seconds.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut title_with_figures = title;
    while !title_with_figures.contains("fps") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        title_with_figures = xvfb.wait_for_title("chat - in a call with", Duration::from_secs(1));
    }
    assert!(title_with_figures.contains("recv") && title_with_figures.contains("fps"), "{title_with_figures}");

    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
    assert!(a.stderr().contains("window open"), "{}", a.describe());
    assert!(xvfb.window_titles().unwrap_or_default().iter().all(|t| !t.starts_with("chat")), "window left open");
}

#[test]
fn m_mutes_and_v_turns_the_camera_off_and_on_and_the_peer_sees_it() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = xvfb.windowed_listener(dir.path());
    let stats = dir.path().join("b.json");
    let mut b_args = peer_args(dir.path(), "b");
    b_args.extend(["--call".to_string(), format!("127.0.0.1:{port}"), "--duration".into(), "7".into()]);
    b_args.extend(["--stats-json".to_string(), stats.display().to_string()]);
    let mut b = Peer::start("b", dir.path(), &strs(&b_args));
    xvfb.wait_for_title("chat - in a call with", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    xvfb.press("chat", "m");
    xvfb.wait_for_title("chat - in a call with", Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !xvfb.wait_for_title("chat", Duration::from_secs(1)).contains("muted (M)") {
        assert!(Instant::now() < deadline, "the title never said muted");
        std::thread::sleep(Duration::from_millis(100));
    }
    xvfb.press("chat", "v");
    // Off for a couple of B's one-second reports, then on again.
    std::thread::sleep(Duration::from_millis(2500));
    xvfb.press("chat", "v");
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());

    // B's per-second lines (A started unmuted with its camera on): A muted, turned its camera
    // off (no pictures came meanwhile), then on again (pictures came back).
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&stats).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["peer_muted"], true, "{summary}");
    assert_eq!(summary["peer_camera_off"], false, "{summary}");
    let frames = |line: &serde_json::Value| line["frames_received"].as_u64().unwrap();
    let off: Vec<&serde_json::Value> = lines.iter().filter(|l| l["peer_camera_off"] == true).collect();
    assert!(off.len() >= 2, "the camera was off for less than two reports: {lines:?}");
    assert!(frames(off[off.len() - 1]) <= frames(off[0]) + 2, "pictures kept coming while off: {off:?}");
    assert!(frames(summary) > frames(off[off.len() - 1]) + 15, "pictures did not come back: {summary}");
}
