//! Helpers for end-to-end tests: run `chat` peers as child processes (on loopback, or in a
//! test's network namespace), with their output in files, and read their `--stats-json`
//! summaries.
#![allow(dead_code)] // each test binary uses its own subset

pub mod hostile;
pub mod link;
pub mod nat;
pub mod netns;
pub mod pulse;
pub mod relay;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn chat() -> &'static str {
    env!("CARGO_BIN_EXE_chat")
}

/// A running `chat` process.
pub struct Peer {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    pub name: String,
}

impl Peer {
    /// Starts `chat ARGS` with its output in `dir/NAME.out` and `dir/NAME.err`.
    pub fn start(name: &str, dir: &Path, args: &[&str]) -> Self {
        Self::start_with_env::<&str, &str>(name, dir, args, &[])
    }

    pub fn start_with_env<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        name: &str,
        dir: &Path,
        args: &[&str],
        env: &[(K, V)],
    ) -> Self {
        let mut command = Command::new(chat());
        command.args(args);
        Self::spawn(name, dir, command, env)
    }

    /// Starts `chat ARGS` inside the network namespace `namespace` (through `ip netns
    /// exec`, which becomes `chat`: the process is the peer itself), output as `start`.
    pub fn start_in_namespace(name: &str, dir: &Path, namespace: &str, args: &[&str]) -> Self {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace, chat()]).args(args);
        Self::spawn::<&str, &str>(name, dir, command, &[])
    }

    /// Runs `command` with the test environment and its output in `dir/NAME.out` and `.err`.
    fn spawn<K: AsRef<OsStr>, V: AsRef<OsStr>>(name: &str, dir: &Path, mut command: Command, env: &[(K, V)]) -> Self {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        command
            .env_remove("DISPLAY")
            // CHAT_TEST_LOG sets the peers' log filter, to look into a test's calls.
            .env("RUST_LOG", std::env::var("CHAT_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("starting chat");
        Self { child, out, err, name: name.to_string() }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stdout has a line containing `needle`; returns that line.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stdout().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before printing {needle:?}\n{}", self.name, self.describe());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {needle:?} in {timeout:?}\n{}",
                self.name,
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port a `--listen ...:0` peer reports.
    pub fn listening_port(&mut self) -> u16 {
        let line = self.wait_for_line("listening on", Duration::from_secs(20));
        let addr = line.split_whitespace().nth(2).expect("address after 'listening on'");
        addr.rsplit(':').next().unwrap().parse().expect("port")
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for exit and panics (with the output) if it takes longer than `timeout`.
    pub fn expect_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait(timeout) {
            Some(status) => status,
            None => panic!("{} still running after {timeout:?}\n{}", self.name, self.describe()),
        }
    }

    /// Sends a signal (`kill -SIG`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success());
    }

    pub fn describe(&self) -> String {
        format!("--- {} stdout:\n{}--- {} stderr:\n{}", self.name, self.stdout(), self.name, self.stderr())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `"summary": true` object at the end of a `--stats-json` file.
pub fn summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let last = text.lines().rev().find(|l| l.contains("\"summary\":true")).unwrap_or_else(|| {
        panic!("no summary in {}:\n{text}", path.display());
    });
    serde_json::from_str(last).unwrap()
}

pub fn number(value: &serde_json::Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

/// Arguments every test peer shares: headless, test pattern, a test tone played to nowhere
/// (whatever sound devices the machine has), 640x480, its own certs, accepting new peers
/// (no terminal to ask on).
pub fn peer_args(dir: &Path, name: &str) -> Vec<String> {
    let certs = dir.join(format!("certs-{name}"));
    let args = [
        "--headless",
        "--source",
        "test",
        "--audio-source",
        "tone",
        "--audio-sink",
        "none",
        "--size",
        "640x480",
        "--quiet",
        "--accept-new",
        "--certs",
    ];
    args.iter().map(|s| s.to_string()).chain([certs.to_str().unwrap().to_string()]).collect()
}

/// `peer_args` followed by `extra`, where an option in `extra` replaces the shared one.
pub fn peer_args_with(dir: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    let shared = peer_args(dir, name);
    let mut args = Vec::new();
    let mut i = 0;
    while i < shared.len() {
        let takes_value = shared.get(i + 1).is_some_and(|v| !v.starts_with("--"));
        if !extra.contains(&shared[i].as_str()) {
            args.push(shared[i].clone());
            if takes_value {
                args.push(shared[i + 1].clone());
            }
        }
        i += if takes_value { 2 } else { 1 };
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// `peer_args_with` without `--accept-new`: known peers only, the default.
pub fn strict_args(dir: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    peer_args_with(dir, name, extra).into_iter().filter(|a| a != "--accept-new").collect()
}

/// The fingerprint of the peer whose certs are `dir/certs-NAME` (made if need be).
pub fn fingerprint_of(dir: &Path, name: &str) -> String {
    let certs = dir.join(format!("certs-{name}"));
    let out = Command::new(chat()).args(["--fingerprint", "--certs", certs.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts `chat ARGS --listen 127.0.0.1:0` and returns it with the port it took.
pub fn start_listener(dir: &Path, name: &str, args: Vec<String>) -> (Peer, u16) {
    start_listener_with_env::<&str, &str>(dir, name, args, &[])
}

/// `start_listener` with extra environment variables.
pub fn start_listener_with_env<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    dir: &Path,
    name: &str,
    mut args: Vec<String>,
    env: &[(K, V)],
) -> (Peer, u16) {
    args.extend(["--listen", "127.0.0.1:0"].map(String::from));
    let mut peer = Peer::start_with_env(name, dir, &strs(&args), env);
    let port = peer.listening_port();
    (peer, port)
}

/// Starts `chat ARGS --call 127.0.0.1:PORT`.
pub fn start_caller(dir: &Path, name: &str, port: u16, args: Vec<String>) -> Peer {
    start_caller_with_env::<&str, &str>(dir, name, port, args, &[])
}

/// `start_caller` with extra environment variables.
pub fn start_caller_with_env<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    dir: &Path,
    name: &str,
    port: u16,
    mut args: Vec<String>,
    env: &[(K, V)],
) -> Peer {
    args.extend(["--call".to_string(), format!("127.0.0.1:{port}")]);
    Peer::start_with_env(name, dir, &strs(&args), env)
}

pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
