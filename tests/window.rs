//! The window under Xvfb: it opens, shows the waiting view, then the call with its live
//! figures in the title, takes M and V, and closes when the call ends. Needs Xvfb,
//! xwininfo and xdotool (scripts/setup.sh installs them).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Peer, peer_args, start_listener_with_env, strs};

/// A private X server on a free display number, stopped on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        let number = (100..200)
            .find(|n| !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists())
            .expect("a free X display number");
        let display = format!(":{number}");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is not installed: run scripts/setup.sh");
        let xvfb = Self { child, display };
        let deadline = Instant::now() + Duration::from_secs(10);
        while xvfb.window_titles().is_none() {
            assert!(Instant::now() < deadline, "Xvfb did not start on {}", xvfb.display);
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
    fn drop(&mut self) {
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
