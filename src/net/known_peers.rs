//! The known-peers file: the identities this peer has accepted. One peer per line,
//! `ADDRESS FINGERPRINT [NAME]`. A peer is known by its FINGERPRINT; ADDRESS is where we
//! last called it (`host:port`), a hint that pins the identity expected there, or `*` for a
//! peer accepted when it called us (callers come from any address). When a known identity
//! answers at a new address, its line moves there (`moved`). `#` starts a comment. Written
//! with `write_private_file`: mode 0600, replaced whole, never through a symlink.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::identity::Fingerprint;
use super::private_file::{PrivateFileError, write_private_file};
#[cfg(unix)]
use super::strict_modes::{StrictModesError, check_known_peers};

pub const KNOWN_PEERS_FILE: &str = "known_peers";
/// ADDRESS of a peer accepted as a caller.
pub const ANY_ADDRESS: &str = "*";

/// What went wrong with the known-peers file.
#[derive(Debug, thiserror::Error)]
pub enum KnownPeersError {
    /// The file could not be read or written. The message holds the I/O error, so it is not
    /// also the source (`{:#}` would print it twice).
    #[error("{path}: {error}; it must be a file you can read and write (or absent)")]
    Io { path: PathBuf, error: std::io::Error },
    /// A line is not `ADDRESS FINGERPRINT [NAME]`.
    #[error("{path}:{line}: expected `ADDRESS FINGERPRINT [NAME]` (64 hex digits); fix or delete that line")]
    BadLine { path: PathBuf, line: usize },
    /// A name with characters that would break the file.
    #[error("peer name {0:?} is not allowed: use letters, digits, '-', '_' and '.' (at most 64)")]
    BadName(String),
    /// The new file could not be written.
    #[error(transparent)]
    Write(#[from] PrivateFileError),
    /// Other users could change the file, or it belongs to one.
    #[cfg(unix)]
    #[error(transparent)]
    Unsafe(#[from] StrictModesError),
}

/// One remembered peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPeer {
    /// `host:port`, or `*` for an accepted caller.
    pub address: String,
    pub fingerprint: Fingerprint,
    pub name: Option<String>,
    /// 1-based line number in the file, for messages that tell the user what to remove.
    pub line: usize,
}

impl KnownPeer {
    /// The name if there is one, else the address.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.address)
    }
}

/// Checks a peer name for the file: one word of safe characters.
pub fn check_name(name: &str) -> Result<(), KnownPeersError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(KnownPeersError::BadName(name.into())) }
}

/// The parsed file.
#[derive(Debug)]
pub struct KnownPeers {
    path: PathBuf,
    peers: Vec<KnownPeer>,
}

impl KnownPeers {
    /// Reads the file in `certs_dir`; a missing file is an empty list. A file that other
    /// users could change is refused.
    pub fn load(certs_dir: &Path) -> Result<Self, KnownPeersError> {
        let path = certs_dir.join(KNOWN_PEERS_FILE);
        let text = read_text(&path)?;
        let mut peers = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let bad = || KnownPeersError::BadLine { path: path.clone(), line: line_no };
            let fields: Vec<&str> = content.split_whitespace().collect();
            let (address, fingerprint, name) = match fields.as_slice() {
                [address, fp] => (address, fp, None),
                [address, fp, name] if check_name(name).is_ok() => (address, fp, Some(name.to_string())),
                _ => return Err(bad()),
            };
            let fingerprint = Fingerprint::parse(fingerprint).ok_or_else(bad)?;
            peers.push(KnownPeer { address: address.to_string(), fingerprint, name, line: line_no });
        }
        Ok(Self { path, peers })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The peer we called at `address`.
    pub fn by_address(&self, address: &str) -> Option<&KnownPeer> {
        self.peers.iter().find(|p| p.address == address)
    }

    /// An entry with this identity: one with an address if there is one (a peer we
    /// called), else a caller's.
    pub fn by_fingerprint(&self, fingerprint: &Fingerprint) -> Option<&KnownPeer> {
        let mut entries = self.peers.iter().filter(|p| p.fingerprint == *fingerprint);
        let first = entries.next()?;
        Some(if first.address == ANY_ADDRESS {
            entries.find(|p| p.address != ANY_ADDRESS).unwrap_or(first)
        } else {
            first
        })
    }

    /// Adds a peer and writes the file (replaced whole: never half-written).
    pub fn remember(
        &mut self,
        address: &str,
        fingerprint: Fingerprint,
        name: Option<&str>,
    ) -> Result<(), KnownPeersError> {
        if let Some(name) = name {
            check_name(name)?;
        }
        // Read again: the file may have changed since it was loaded. A file that cannot be
        // read is an error, never a reason to write one with only the new line.
        let mut text = read_text(&self.path)?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{address} {}", fingerprint.to_hex()));
        if let Some(name) = name {
            text.push_str(&format!(" {name}"));
        }
        text.push('\n');
        write_private_file(&self.path, text.as_bytes())?;
        let line = text.lines().count();
        self.peers.push(KnownPeer { address: address.to_string(), fingerprint, name: name.map(String::from), line });
        Ok(())
    }

    /// Records that `peer` now answers at `address`: its line takes the new address. A peer
    /// known only as a caller (`*`) keeps that line, so it may still call from anywhere, and
    /// gains one with the address. Returns the line now holding the address.
    pub fn moved(&mut self, peer: &KnownPeer, address: &str) -> Result<usize, KnownPeersError> {
        if peer.address == ANY_ADDRESS {
            self.remember(address, peer.fingerprint, peer.name.as_deref())?;
            return Ok(self.peers.last().map_or(0, |p| p.line));
        }
        // Read again: the file may have changed since it was loaded. Only the line that
        // still holds the peer's old address and identity changes, and only its address:
        // the fingerprint as written, the name and any comment stay.
        let text = read_text(&self.path)?;
        let mut changed = None;
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let content = line.split('#').next().unwrap_or("");
                let mut fields = content.split_whitespace();
                let ours = fields.next() == Some(peer.address.as_str())
                    && fields.next().and_then(Fingerprint::parse) == Some(peer.fingerprint);
                if !ours || changed.is_some() {
                    return line.to_string();
                }
                changed = Some(i + 1);
                let start = line.len() - line.trim_start().len();
                format!("{}{address}{}", &line[..start], &line[start + peer.address.len()..])
            })
            .collect();
        let Some(line) = changed else {
            // The line went away meanwhile: remember the peer afresh.
            self.remember(address, peer.fingerprint, peer.name.as_deref())?;
            return Ok(self.peers.last().map_or(0, |p| p.line));
        };
        write_private_file(&self.path, format!("{}\n", lines.join("\n")).as_bytes())?;
        if let Some(entry) = self.peers.iter_mut().find(|p| p.line == line) {
            entry.address = address.to_string();
        }
        Ok(line)
    }
}

/// The file's text, empty when there is no file yet.
fn read_text(path: &Path) -> Result<String, KnownPeersError> {
    match fs::File::open(path) {
        Ok(file) => read_checked(path, file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(KnownPeersError::Io { path: path.to_path_buf(), error }),
    }
}

/// Reads the opened file, refusing it first if other users could change it.
fn read_checked(path: &Path, mut file: fs::File) -> Result<String, KnownPeersError> {
    let io_error = |error| KnownPeersError::Io { path: path.to_path_buf(), error };
    #[cfg(unix)]
    check_known_peers(path, &file.metadata().map_err(io_error)?)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io_error)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_became_unreadable_is_not_replaced_by_the_new_line_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        known.remember("a:1", Fingerprint([1; 32]), None).unwrap();
        let path = dir.path().join(KNOWN_PEERS_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(b"# \xff not UTF-8\n");
        fs::write(&path, &bytes).unwrap();
        assert!(known.remember("b:2", Fingerprint([2; 32]), None).is_err());
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn remembered_peers_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        assert!(known.by_address("a:1254").is_none());
        known.remember("a:1254", Fingerprint([1; 32]), Some("alice")).unwrap();
        known.remember(ANY_ADDRESS, Fingerprint([2; 32]), None).unwrap();
        let reloaded = KnownPeers::load(dir.path()).unwrap();
        let alice = reloaded.by_address("a:1254").unwrap();
        assert_eq!((alice.fingerprint, alice.label()), (Fingerprint([1; 32]), "alice"));
        let caller = reloaded.by_fingerprint(&Fingerprint([2; 32])).unwrap();
        assert_eq!((caller.line, caller.label()), (2, "*"));
        assert!(reloaded.by_fingerprint(&Fingerprint([3; 32])).is_none());
    }

    #[test]
    fn a_peer_that_moved_keeps_its_line_name_and_comment_at_the_new_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KNOWN_PEERS_FILE);
        let (one, two) = ("01".repeat(32), "02".repeat(32));
        fs::write(&path, format!("# mine\nold:1 {one} alice # laptop\n* {two}\n")).unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        let alice = known.by_fingerprint(&Fingerprint([1; 32])).unwrap().clone();
        assert_eq!(known.moved(&alice, "new:2").unwrap(), 2);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("# mine\nnew:2 {one} alice # laptop\n* {two}\n"));
        assert!(KnownPeers::load(dir.path()).unwrap().by_address("new:2").is_some());

        // A line written by hand (upper case, with an extra space) moves all the same.
        let three = "03".repeat(32).to_uppercase();
        fs::write(&path, format!("old:3  {three} carol\n")).unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        let carol = known.by_fingerprint(&Fingerprint([3; 32])).unwrap().clone();
        assert_eq!(known.moved(&carol, "new:3").unwrap(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("new:3  {three} carol\n"));
        fs::write(&path, format!("# mine\nnew:2 {one} alice # laptop\n* {two}\n")).unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();

        // A caller we now call keeps its `*` line and gains one with the address.
        let caller = known.by_fingerprint(&Fingerprint([2; 32])).unwrap().clone();
        assert_eq!(known.moved(&caller, "[::1]:3").unwrap(), 4);
        let reloaded = KnownPeers::load(dir.path()).unwrap();
        assert_eq!(reloaded.by_address("[::1]:3").unwrap().fingerprint, Fingerprint([2; 32]));
        assert_eq!(reloaded.by_address(ANY_ADDRESS).unwrap().fingerprint, Fingerprint([2; 32]));
    }

    #[test]
    fn comments_are_kept_and_bad_lines_and_names_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KNOWN_PEERS_FILE);
        fs::write(&path, format!("# mine\nhost:1 {}  # laptop\n", "0f".repeat(32))).unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        assert_eq!(known.by_address("host:1").unwrap().line, 2);
        known.remember("other:2", Fingerprint([3; 32]), None).unwrap();
        assert!(fs::read_to_string(&path).unwrap().starts_with("# mine\n"));
        assert!(matches!(
            known.remember("x:1", Fingerprint([4; 32]), Some("two words")),
            Err(KnownPeersError::BadName(_))
        ));

        fs::write(&path, "host:1 nothex\n").unwrap();
        let err = KnownPeers::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
        fs::write(&path, format!("host:1 {} a b\n", "0f".repeat(32))).unwrap();
        assert!(KnownPeers::load(dir.path()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_written_0600_and_never_through_a_symlink_at_the_old_temporary_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "target\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("known_peers.tmp")).unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        known.remember(ANY_ADDRESS, Fingerprint([5; 32]), None).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "target\n");
        let metadata = fs::symlink_metadata(known.path()).unwrap();
        assert!(metadata.file_type().is_file());
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o600);
        assert!(KnownPeers::load(dir.path()).unwrap().by_fingerprint(&Fingerprint([5; 32])).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_other_users_could_change_is_refused_with_the_chmod_that_fixes_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KNOWN_PEERS_FILE);
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let err = KnownPeers::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("(mode 0666)") && err.ends_with(&format!("run `chmod 600 {}`", path.display())), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(KnownPeers::load(dir.path()).is_ok());
    }

    #[test]
    fn an_unreadable_file_is_reported_once_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(KNOWN_PEERS_FILE)).unwrap();
        let error = anyhow::Error::from(KnownPeers::load(dir.path()).unwrap_err());
        assert_eq!(format!("{error:#}"), error.to_string(), "the cause is printed once");
        assert!(error.to_string().contains(KNOWN_PEERS_FILE), "{error}");
    }
}
