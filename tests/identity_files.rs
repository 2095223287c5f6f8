//! The files in the certs directory, end to end: known_peers is written without following
//! a symlink.
#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{peer_args_with, start_caller, start_listener};

/// Runs `chat ARGS --certs CERTS` to completion, with no logging beyond errors.
fn run_chat(certs: &Path, args: &[&str]) -> Output {
    Command::new(common::chat()).args(args).arg("--certs").arg(certs).env_remove("RUST_LOG").output().unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
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
