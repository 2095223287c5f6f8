//! Refusing certs files that other users could read or change, like ssh's StrictModes: the
//! certs directory and known_peers must not be writable by group or others, the key must
//! not be readable or writable by them, and each must belong to this user or to root.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a path in the certs directory is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StrictModesError {
    /// Other users can write to the certs directory, so they could swap the files in it.
    #[error(
        "{path} is writable by other users (mode {mode:04o}), so they could replace this peer's identity or known peers; run `chmod 700 {path}`"
    )]
    OpenDirectory { path: PathBuf, mode: u32 },
    /// Other users can read or change the private key, so they could pose as this peer.
    #[error(
        "{path} can be read or changed by other users (mode {mode:04o}), so they could pose as this peer; run `chmod 600 {path}`"
    )]
    OpenKey { path: PathBuf, mode: u32 },
    /// Other users can change known_peers, so they could add peers this one would trust.
    #[error(
        "{path} is writable by other users (mode {mode:04o}), so they could add peers this one would trust; run `chmod 600 {path}`"
    )]
    OpenKnownPeers { path: PathBuf, mode: u32 },
    /// The path belongs to a user other than this one or root, who could change it.
    #[error(
        "{path} belongs to user id {owner}, not to you (user id {me}) or root, so that user could change it; use a --certs directory of your own"
    )]
    Owner { path: PathBuf, owner: u32, me: u32 },
}

/// Which paths in the certs directory are checked, and what they must not allow.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Not writable by others.
    CertsDirectory,
    /// Neither readable nor writable by others.
    Key,
    /// Not writable by others.
    KnownPeers,
}

/// Refuses a certs directory that other users could write to.
pub fn check_certs_directory(path: &Path, metadata: &Metadata) -> Result<(), StrictModesError> {
    check(path, metadata, Kind::CertsDirectory)
}

/// Refuses a key file that other users could read or write.
pub fn check_key(path: &Path, metadata: &Metadata) -> Result<(), StrictModesError> {
    check(path, metadata, Kind::Key)
}

/// Refuses a known_peers file that other users could write to.
pub fn check_known_peers(path: &Path, metadata: &Metadata) -> Result<(), StrictModesError> {
    check(path, metadata, Kind::KnownPeers)
}

fn check(path: &Path, metadata: &Metadata, kind: Kind) -> Result<(), StrictModesError> {
    judge(path, kind, metadata.mode() & 0o7777, metadata.uid(), rustix::process::geteuid().as_raw())
}

/// The decision, from the mode and owner of `path` and the user `me` running chat.
fn judge(path: &Path, kind: Kind, mode: u32, owner: u32, me: u32) -> Result<(), StrictModesError> {
    const ROOT: u32 = 0;
    if owner != me && owner != ROOT {
        return Err(StrictModesError::Owner { path: path.to_path_buf(), owner, me });
    }
    let path = path.to_path_buf();
    let (forbidden, refusal) = match kind {
        Kind::CertsDirectory => (0o022, StrictModesError::OpenDirectory { path, mode }),
        Kind::Key => (0o077, StrictModesError::OpenKey { path, mode }),
        Kind::KnownPeers => (0o022, StrictModesError::OpenKnownPeers { path, mode }),
    };
    if mode & forbidden == 0 { Ok(()) } else { Err(refusal) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 1000;

    fn allowed(kind: Kind, mode: u32) -> bool {
        judge(Path::new("/c"), kind, mode, ME, ME).is_ok()
    }

    #[test]
    fn the_directory_and_known_peers_may_be_read_but_not_written_by_others() {
        for kind in [Kind::CertsDirectory, Kind::KnownPeers] {
            for mode in [0o700, 0o755, 0o600, 0o644, 0o1700] {
                assert!(allowed(kind, mode), "{kind:?} {mode:o}");
            }
            for mode in [0o770, 0o702, 0o777, 0o1777, 0o620] {
                assert!(!allowed(kind, mode), "{kind:?} {mode:o}");
            }
        }
    }

    #[test]
    fn the_key_is_for_its_owner_only() {
        assert!(allowed(Kind::Key, 0o600));
        assert!(allowed(Kind::Key, 0o400));
        for mode in [0o640, 0o604, 0o610, 0o601, 0o644] {
            assert!(!allowed(Kind::Key, mode), "{mode:o}");
        }
    }

    #[test]
    fn refusals_name_the_path_the_mode_and_the_chmod_that_fixes_it() {
        let refusal = |kind, mode| judge(Path::new("/home/a/certs"), kind, mode, ME, ME).unwrap_err().to_string();
        let directory = refusal(Kind::CertsDirectory, 0o777);
        assert!(
            directory.contains("(mode 0777)") && directory.ends_with("run `chmod 700 /home/a/certs`"),
            "{directory}"
        );
        let key = refusal(Kind::Key, 0o644);
        assert!(key.contains("(mode 0644)") && key.ends_with("run `chmod 600 /home/a/certs`"), "{key}");
        let known_peers = refusal(Kind::KnownPeers, 0o666);
        assert!(
            known_peers.contains("(mode 0666)") && known_peers.ends_with("`chmod 600 /home/a/certs`"),
            "{known_peers}"
        );
    }

    #[test]
    fn paths_of_another_user_are_refused_and_roots_are_not() {
        for kind in [Kind::CertsDirectory, Kind::Key, Kind::KnownPeers] {
            assert!(judge(Path::new("/c"), kind, 0o600, 0, ME).is_ok(), "{kind:?}");
            let err = judge(Path::new("/c"), kind, 0o600, 1001, ME).unwrap_err();
            assert_eq!(err, StrictModesError::Owner { path: "/c".into(), owner: 1001, me: ME });
            assert!(err.to_string().contains("user id 1001, not to you (user id 1000)"), "{err}");
        }
    }

    #[test]
    fn real_metadata_is_judged_by_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_certs_directory(dir.path(), &std::fs::metadata(dir.path()).unwrap()).is_ok());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_certs_directory(dir.path(), &std::fs::metadata(dir.path()).unwrap()).unwrap_err();
        assert_eq!(err, StrictModesError::OpenDirectory { path: dir.path().into(), mode: 0o777 });
    }
}
