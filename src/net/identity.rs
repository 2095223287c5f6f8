//! This peer's identity: a self-signed certificate and key kept in the certs directory
//! (made on first run, both files mode 0600), and the SHA-256 fingerprints that name peers.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustls::InconsistentKeys;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

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
    /// The key is a key, but not the one of the certificate.
    #[error(
        "{key} is not the key of {cert}; put back the key that belongs to it, or move both away to make a new identity (peers that know the old one will then refuse you)"
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    /// rcgen could not make a certificate.
    #[error("could not generate a certificate: {0}")]
    Generate(rcgen::Error),
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
        check_key_matches(&cert, &cert_path, &key, &key_path)?;
        Ok(Self { cert, key })
    }

    /// Makes a new certificate and key in `dir`.
    fn create(dir: &Path) -> Result<(), IdentityError> {
        let made = rcgen::generate_simple_self_signed(vec!["chat".to_string()]).map_err(IdentityError::Generate)?;
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

/// Refuses a key that rustls cannot sign with, or that is not the certificate's, now and
/// with both paths, rather than at the first handshake with rustls's bare "KeyMismatch".
fn check_key_matches(
    cert: &CertificateDer<'static>,
    cert_path: &Path,
    key: &PrivateKeyDer<'static>,
    key_path: &Path,
) -> Result<(), IdentityError> {
    let signing_key =
        rustls::crypto::ring::default_provider().key_provider.load_private_key(key.clone_key()).map_err(|e| {
            let reason = match e {
                rustls::Error::General(text) => text,
                other => other.to_string(),
            };
            IdentityError::Corrupt { path: key_path.to_path_buf(), reason }
        })?;
    match CertifiedKey::new(vec![cert.clone()], signing_key).keys_match() {
        // rustls's own rule: a key that cannot tell its public half is no mismatch (ring's all can).
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(IdentityError::Mismatch { cert: cert_path.to_path_buf(), key: key_path.to_path_buf() })
        }
        Err(e) => Err(IdentityError::Corrupt {
            path: cert_path.to_path_buf(),
            reason: format!("not a certificate that can be read ({e})"),
        }),
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
        fs::write(dir.path().join(CERT_FILE), pem_of_no_der("CERTIFICATE")).unwrap();
        let err = Identity::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains(CERT_FILE), "{err}");
    }

    /// Well-formed PEM around bytes that are no DER structure: only parsing finds out.
    fn pem_of_no_der(label: &str) -> String {
        format!("-----BEGIN {label}-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END {label}-----\n")
    }

    #[test]
    fn a_corrupt_key_is_reported_once_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let key = dir.path().join(KEY_FILE);
        fs::write(&key, pem_of_no_der("PRIVATE KEY")).unwrap();
        let err = anyhow::Error::from(Identity::load_or_create(dir.path()).unwrap_err());
        assert_eq!(format!("{err:#}"), err.to_string(), "the cause is printed once");
        assert!(err.to_string().starts_with(&format!("{}: failed to parse private key", key.display())), "{err}");
    }

    #[test]
    fn a_key_of_another_identity_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, other) = (dir.path().join("mine"), dir.path().join("other"));
        Identity::load_or_create(&mine).unwrap();
        Identity::load_or_create(&other).unwrap();
        fs::copy(other.join(KEY_FILE), mine.join(KEY_FILE)).unwrap();
        let err = Identity::load_or_create(&mine).unwrap_err();
        assert!(
            matches!(&err, IdentityError::Mismatch { cert, key } if *cert == mine.join(CERT_FILE) && *key == mine.join(KEY_FILE)),
            "{err}"
        );
        assert!(err.to_string().contains("move both away to make a new identity"), "{err}");
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
