//! Replacing a file in the certs directory so that nobody else can read it or redirect the
//! write: a new temporary file with a random name, created exclusively with mode 0600,
//! written and synced, then renamed over the destination, and the directory synced.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

/// What went wrong while replacing a file.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The system's random number generator failed, so no temporary name could be chosen.
    #[error("cannot write {path}: the system's random number generator failed; check that /dev/urandom works")]
    Random { path: PathBuf },
    /// The temporary file could not be created: the directory is missing or not writable,
    /// or something already exists at that name (and is left alone).
    #[error(
        "cannot create {temporary} to write {path}: {error}; check that the directory exists and that you can write to it"
    )]
    CreateTemporary { temporary: PathBuf, path: PathBuf, error: std::io::Error },
    /// Writing the temporary file, syncing it or renaming it over the destination failed.
    #[error(
        "cannot write {path}: {error}; it is unchanged; check that the disk has room and the directory is writable"
    )]
    Write { path: PathBuf, error: std::io::Error },
    /// The file was replaced, but the directory entry could not be synced to disk.
    #[error(
        "wrote {path} but could not sync its directory: {error}; the change may be lost if the system crashes now; check the disk"
    )]
    SyncDirectory { path: PathBuf, error: std::io::Error },
}

/// Replaces `path` with `contents`, readable and writable by its owner only. Readers see
/// the old file or the new one, never a part; a crash leaves at most a stray temporary.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), PrivateFileError> {
    let mut random = [0u8; 8];
    SystemRandom::new().fill(&mut random).map_err(|_| PrivateFileError::Random { path: path.to_path_buf() })?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    replace_through(&path.with_file_name(format!(".{name}.{suffix}.tmp")), path, contents)
}

/// Writes `contents` to a new file at `temporary` and renames it over `path`. An existing
/// file or symlink at `temporary` is an error and is left as it is.
fn replace_through(temporary: &Path, path: &Path, contents: &[u8]) -> Result<(), PrivateFileError> {
    let mut options = fs::OpenOptions::new();
    // create_new is O_CREAT|O_EXCL: it never opens what is there already, symlinks included.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(temporary).map_err(|error| PrivateFileError::CreateTemporary {
        temporary: temporary.to_path_buf(),
        path: path.to_path_buf(),
        error,
    })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    drop(file);
    if let Err(error) = written.and_then(|()| fs::rename(temporary, path)) {
        // Ours since create_new succeeded: nothing else is removed.
        let _ = fs::remove_file(temporary);
        return Err(PrivateFileError::Write { path: path.to_path_buf(), error });
    }
    // Elsewhere a directory cannot be opened to sync it.
    #[cfg(unix)]
    sync_directory(path)?;
    Ok(())
}

/// Makes the rename durable: on Unix a directory is synced like a file.
#[cfg(unix)]
fn sync_directory(path: &Path) -> Result<(), PrivateFileError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|error| PrivateFileError::SyncDirectory { path: path.to_path_buf(), error })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_is_replaced_with_mode_0600_and_no_temporary_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_peers");
        fs::write(&path, "old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private_file(&path, b"new\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names_in(dir.path()), ["known_peers"]);
    }

    #[test]
    fn a_symlink_at_the_temporary_name_is_neither_followed_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "target\n").unwrap();
        let temporary = dir.path().join("known_peers.tmp");
        std::os::unix::fs::symlink(&target, &temporary).unwrap();
        let path = dir.path().join("known_peers");
        let err = replace_through(&temporary, &path, b"new\n").unwrap_err();
        assert!(matches!(err, PrivateFileError::CreateTemporary { .. }), "{err}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "target\n");
        assert!(fs::symlink_metadata(&temporary).unwrap().file_type().is_symlink());
        assert!(!path.exists());
    }

    #[test]
    fn a_failed_rename_removes_the_temporary_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_peers");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), "").unwrap();
        let err = write_private_file(&path, b"new\n").unwrap_err();
        assert!(matches!(err, PrivateFileError::Write { .. }), "{err}");
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        assert_eq!(names_in(dir.path()), ["known_peers"]);
    }
}
