//! This peer's identity: a self-signed certificate and key kept in the certs directory
//! (made on first run, both files mode 0600), and the SHA-256 fingerprints that name peers.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::private_file::{PrivateFileError, write_private_file};
#[cfg(unix)]
use super::strict_modes::{self, StrictModesError};

/// File names inside the certs directory.
pub const CERT_FILE: &str = "identity.crt";
pub const KEY_FILE: &str = "identity.key";

/// What went wrong with the identity files.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The certs directory or a file in it could not be made or read. The message holds the
    /// I/O error, so it is not also the source (`{:#}` would print it twice).
    #[error(
        "{path}: {error}; --certs (or CHAT_CERTS) must name a directory of yours that holds both identity.crt and identity.key, or neither to make a new identity"
    )]
    Io { path: PathBuf, error: std::io::Error },
    /// The certs directory or the key is open to other users, or belongs to one.
    #[cfg(unix)]
    #[error(transparent)]
    Unsafe(#[from] StrictModesError),
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

    /// Loads the identity from `dir`, making the directory (mode 0700) and a new identity if
    /// there is none. A directory or key that other users could change or read is refused.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        open_certs_directory(dir)?;
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if !cert_path.exists() && !key_path.exists() {
            Self::create(dir)?;
        }
        let cert_pem = fs::read(&cert_path).map_err(io_error(&cert_path))?;
        let key_pem = read_key(&key_path)?;
        let cert = CertificateDer::from_pem_slice(&cert_pem)
            .map_err(|e| IdentityError::Corrupt { path: cert_path.clone(), reason: e.to_string() })?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| IdentityError::Corrupt { path: key_path.clone(), reason: e.to_string() })?;
        Ok(Self { cert, key })
    }

    /// Makes a new certificate and key in `dir`.
    fn create(dir: &Path) -> Result<(), IdentityError> {
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

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError {
    let path = path.to_path_buf();
    move |error| IdentityError::Io { path, error }
}

/// Makes the certs directory (mode 0700) if it is missing, and refuses one that other users
/// could write to.
fn open_certs_directory(dir: &Path) -> Result<(), IdentityError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error(dir))?;
    #[cfg(unix)]
    strict_modes::check_certs_directory(dir, &fs::metadata(dir).map_err(io_error(dir))?)?;
    Ok(())
}

/// Reads the key file, refusing it first if other users could read or change it.
fn read_key(path: &Path) -> Result<Vec<u8>, IdentityError> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    #[cfg(unix)]
    strict_modes::check_key(path, &file.metadata().map_err(io_error(path))?)?;
    let mut pem = Vec::new();
    file.read_to_end(&mut pem).map_err(io_error(path))?;
    Ok(pem)
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

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_new_certs_directory_is_0700_and_refused_once_others_can_write_to_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("config").join("certs");
        Identity::load_or_create(&certs).unwrap();
        assert_eq!(fs::metadata(&certs).unwrap().permissions().mode() & 0o7777, 0o700);
        set_mode(&certs, 0o775);
        let err = Identity::load_or_create(&certs).unwrap_err().to_string();
        assert!(err.contains("(mode 0775)") && err.ends_with(&format!("run `chmod 700 {}`", certs.display())), "{err}");
        set_mode(&certs, 0o755);
        Identity::load_or_create(&certs).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_key_other_users_can_read_is_refused_with_the_chmod_that_fixes_it() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let key = dir.path().join(KEY_FILE);
        set_mode(&key, 0o640);
        let err = Identity::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("(mode 0640)") && err.ends_with(&format!("run `chmod 600 {}`", key.display())), "{err}");
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
