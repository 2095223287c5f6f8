//! This peer's identity: a self-signed certificate and key kept in the certs directory
//! (made on first run, both files mode 0600), and the SHA-256 fingerprints that name peers.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::private_file::{PrivateFileError, write_private_file};

/// File names inside the certs directory.
pub const CERT_FILE: &str = "identity.crt";
pub const KEY_FILE: &str = "identity.key";

/// What went wrong with the identity files.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The certs directory or a file in it could not be read or written. The message holds
    /// the I/O error, so it is not also the source (`{:#}` would print it twice).
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    /// A file exists but does not hold what it should.
    #[error("{path}: {reason}; move it away to make a new identity (peers that know the old one will then refuse you)")]
    Corrupt { path: PathBuf, reason: String },
    /// rcgen could not make a certificate.
    #[error("could not generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A new identity file could not be written.
    #[error(transparent)]
    Write(#[from] PrivateFileError),
}

/// SHA-256 of a certificate (DER): how peers are named and pinned.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert: &CertificateDer<'_>) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        Self(digest.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }

    /// 64 lowercase hex digits, the form stored in files.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits; spaces and colons between them are ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b' ' | b':')).collect();
        if digits.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Self(out))
    }
}

/// Groups of four hex digits, easier to compare by eye: `3f2a 9c11 …`.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        for (i, group) in hex.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(std::str::from_utf8(group).expect("hex is ASCII"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// A certificate and its private key.
#[derive(Debug)]
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert)
    }

    /// Loads the identity from `dir`, making the directory and a new identity if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if !cert_path.exists() && !key_path.exists() {
            Self::create(dir)?;
        }
        let cert = CertificateDer::from_pem_file(&cert_path)
            .map_err(|e| IdentityError::Corrupt { path: cert_path.clone(), reason: e.to_string() })?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| IdentityError::Corrupt { path: key_path.clone(), reason: e.to_string() })?;
        Ok(Self { cert, key })
    }

    fn create(dir: &Path) -> Result<(), IdentityError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |error| IdentityError::Io { path, error }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let made = rcgen::generate_simple_self_signed(vec!["chat".to_string()])?;
        write_private_file(&dir.join(KEY_FILE), made.signing_key.serialize_pem().as_bytes())?;
        // The certificate holds no secret (every peer sees it in the handshake), yet it is
        // 0600 too: no other user needs it (`chat --fingerprint` is how it is shared), and
        // one mode for every file in the certs directory is one thing to check.
        write_private_file(&dir.join(CERT_FILE), made.cert.pem().as_bytes())?;
        tracing::info!(dir = %dir.display(), "made a new identity");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let first = Identity::load_or_create(&certs).unwrap();
        let again = Identity::load_or_create(&certs).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in [KEY_FILE, CERT_FILE] {
                let mode = fs::metadata(certs.join(file)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
        }
    }

    #[test]
    fn a_corrupt_certificate_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        fs::write(dir.path().join(CERT_FILE), "not a certificate").unwrap();
        let err = Identity::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains(CERT_FILE), "{err}");
    }

    #[test]
    fn fingerprints_print_and_parse() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(fp.to_string().len(), 64 + 15);
        assert!(fp.to_string().starts_with("abab abab "));
        assert_eq!(Fingerprint::parse(&fp.to_string()), Some(fp));
        assert_eq!(Fingerprint::parse(&fp.to_hex()), Some(fp));
        assert_eq!(Fingerprint::parse("abcd"), None);
        assert_eq!(Fingerprint::parse(&"zz".repeat(32)), None);
    }
}
