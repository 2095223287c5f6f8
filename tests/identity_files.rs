//! The files in the certs directory, end to end: a bad or mismatched key stops `chat` with
//! one line naming it, files and directories other users could change are refused with
//! the chmod that fixes them, and known_peers is written without following a symlink.
#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{peer_args_with, start_caller, start_listener};

/// Runs `chat ARGS --certs CERTS` to completion, with no logging beyond errors.
fn run_chat(certs: &Path, args: &[&str]) -> Output {
    Command::new(common::chat()).args(args).arg("--certs").arg(certs).env_remove("RUST_LOG").output().unwrap()
}

/// Makes a new identity in `certs` and returns its directory.
fn new_identity(certs: PathBuf) -> PathBuf {
    let out = run_chat(&certs, &["--fingerprint"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    certs
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Asserts that `chat` failed with exactly one line on stderr, nothing on stdout, and that
/// the line holds every one of `needles`.
fn assert_refused_in_one_line(out: &Output, needles: &[&str]) {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "chat succeeded:\n{stdout}{stderr}");
    assert!(stdout.is_empty(), "stdout: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "not one line:\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
}

/// A listener that must stop before it opens a socket.
const LISTEN: [&str; 9] =
    ["--listen", "127.0.0.1:0", "--headless", "--source", "test", "--audio-source", "none", "--audio-sink", "none"];

#[test]
fn a_corrupt_key_stops_chat_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let certs = new_identity(dir.path().join("certs"));
    let key = certs.join("identity.key");
    // Well-formed PEM around bytes that are no key: only parsing the key finds out.
    fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let key = key.to_str().unwrap();
    assert_refused_in_one_line(&run_chat(&certs, &["--fingerprint"]), &[key]);
    assert_refused_in_one_line(&run_chat(&certs, &LISTEN), &[key]);
}

#[test]
fn a_key_of_another_identity_stops_chat_with_one_line_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let certs = new_identity(dir.path().join("certs"));
    let other = new_identity(dir.path().join("other"));
    fs::copy(other.join("identity.key"), certs.join("identity.key")).unwrap();
    let (key, cert) = (certs.join("identity.key"), certs.join("identity.crt"));
    let needles = [key.to_str().unwrap(), cert.to_str().unwrap()];
    assert_refused_in_one_line(&run_chat(&certs, &["--fingerprint"]), &needles);
    assert_refused_in_one_line(&run_chat(&certs, &LISTEN), &needles);
}

#[test]
fn files_other_users_could_change_are_refused_with_the_chmod_that_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    let certs = new_identity(dir.path().join("certs"));
    let certs_name = certs.to_str().unwrap();

    set_mode(&certs, 0o777);
    let chmod_dir = format!("chmod 700 {certs_name}");
    assert_refused_in_one_line(&run_chat(&certs, &["--fingerprint"]), &[certs_name, "0777", &chmod_dir]);
    set_mode(&certs, 0o700);

    let key = certs.join("identity.key");
    set_mode(&key, 0o644);
    let chmod_key = format!("chmod 600 {}", key.display());
    assert_refused_in_one_line(&run_chat(&certs, &["--fingerprint"]), &["0644", &chmod_key]);
    set_mode(&key, 0o600);

    // A listener reads known_peers at its first call: it checks the file before waiting.
    let known_peers = certs.join("known_peers");
    fs::write(&known_peers, "").unwrap();
    set_mode(&known_peers, 0o666);
    let chmod_known = format!("chmod 600 {}", known_peers.display());
    assert_refused_in_one_line(&run_chat(&certs, &LISTEN), &["0666", &chmod_known]);
}

#[test]
fn a_symlink_at_the_old_temporary_name_is_not_followed_when_a_caller_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs-a");
    fs::create_dir(&certs).unwrap();
    set_mode(&certs, 0o700);
    let precious = dir.path().join("precious");
    fs::write(&precious, "not yours to overwrite\n").unwrap();
    std::os::unix::fs::symlink(&precious, certs.join("known_peers.tmp")).unwrap();

    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let mut b = start_caller(dir.path(), "b", port, peer_args_with(dir.path(), "b", &["--duration", "1"]));
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(10)).success(), "{}", a.describe());

    assert_eq!(fs::read_to_string(&precious).unwrap(), "not yours to overwrite\n");
    let known_peers = certs.join("known_peers");
    let metadata = fs::symlink_metadata(&known_peers).unwrap();
    assert!(metadata.file_type().is_file(), "{metadata:?}");
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o600);
    let caller = run_chat(&dir.path().join("certs-b"), &["--fingerprint"]);
    let caller = String::from_utf8(caller.stdout).unwrap().replace([' ', '\n'], "");
    let listed = fs::read_to_string(&known_peers).unwrap();
    assert!(listed.contains(&format!("* {caller}")), "caller {caller} not in:\n{listed}");
}
