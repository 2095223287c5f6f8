//! The known-peers file: which fingerprint each called address presented the first time
//! (trust on first use, like SSH's known_hosts). One peer per line:
//! `ADDRESS FINGERPRINT-HEX`, `#` starts a comment. Written atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::identity::Fingerprint;

pub const KNOWN_PEERS_FILE: &str = "known_peers";

/// What went wrong with the known-peers file.
#[derive(Debug, thiserror::Error)]
pub enum KnownPeersError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A line is not `ADDRESS FINGERPRINT`.
    #[error("{path}:{line}: expected `ADDRESS FINGERPRINT` (64 hex digits); fix or delete that line")]
    BadLine { path: PathBuf, line: usize },
}

/// One remembered peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPeer {
    pub address: String,
    pub fingerprint: Fingerprint,
    /// 1-based line number in the file, for messages that tell the user what to remove.
    pub line: usize,
}

/// The parsed file.
#[derive(Debug)]
pub struct KnownPeers {
    path: PathBuf,
    peers: Vec<KnownPeer>,
}

impl KnownPeers {
    /// Reads the file in `certs_dir`; a missing file is an empty list.
    pub fn load(certs_dir: &Path) -> Result<Self, KnownPeersError> {
        let path = certs_dir.join(KNOWN_PEERS_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(KnownPeersError::Io { path, source }),
        };
        let mut peers = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut fields = content.split_whitespace();
            let (Some(address), Some(fp), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(KnownPeersError::BadLine { path, line: line_no });
            };
            let fingerprint =
                Fingerprint::parse(fp).ok_or(KnownPeersError::BadLine { path: path.clone(), line: line_no })?;
            peers.push(KnownPeer { address: address.to_string(), fingerprint, line: line_no });
        }
        Ok(Self { path, peers })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, address: &str) -> Option<&KnownPeer> {
        self.peers.iter().find(|p| p.address == address)
    }

    /// Adds `address` and writes the file (temporary file, then rename: never half-written).
    pub fn remember(&mut self, address: &str, fingerprint: Fingerprint) -> Result<(), KnownPeersError> {
        let existing = fs::read_to_string(&self.path).unwrap_or_default();
        let mut text = existing.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{address} {}\n", fingerprint.to_hex()));
        let io_err = |source| KnownPeersError::Io { path: self.path.clone(), source };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut file = fs::File::create(&tmp).map_err(io_err)?;
        file.write_all(text.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        fs::rename(&tmp, &self.path).map_err(io_err)?;
        let line = text.lines().count();
        self.peers.push(KnownPeer { address: address.to_string(), fingerprint, line });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_peers_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        assert!(known.get("a:1254").is_none());
        known.remember("a:1254", Fingerprint([1; 32])).unwrap();
        known.remember("[::1]:9", Fingerprint([2; 32])).unwrap();
        let reloaded = KnownPeers::load(dir.path()).unwrap();
        assert_eq!(reloaded.get("a:1254").unwrap().fingerprint, Fingerprint([1; 32]));
        assert_eq!(reloaded.get("[::1]:9").unwrap().line, 2);
    }

    #[test]
    fn comments_are_kept_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KNOWN_PEERS_FILE);
        fs::write(&path, format!("# mine\nhost:1 {}  # laptop\n", "0f".repeat(32))).unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        assert_eq!(known.get("host:1").unwrap().line, 2);
        known.remember("other:2", Fingerprint([3; 32])).unwrap();
        assert!(fs::read_to_string(&path).unwrap().starts_with("# mine\n"));

        fs::write(&path, "host:1 nothex\n").unwrap();
        let err = KnownPeers::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
    }
}
