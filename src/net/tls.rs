//! TLS 1.3 for QUIC with self-signed identities: both sides present a certificate, and
//! instead of a CA chain each side checks the other's fingerprint against what it
//! expects. Handshake signatures are always verified, so a peer must hold the key of
//! the certificate it shows.

use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use super::identity::{Fingerprint, Identity};
use super::wire::ALPN;

/// The name the caller asks for; identities are checked by fingerprint, not by name.
pub const SERVER_NAME: &str = "chat";

/// TLS set-up failed (a bad key, or settings rustls refuses). The message holds rustls's,
/// so rustls's error is not also its source: `{:#}` would print it twice.
#[derive(Debug, thiserror::Error)]
#[error("TLS set-up: {0}")]
pub struct TlsError(rustls::Error);

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        Self(error)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The fingerprint a peer presented in the handshake, kept so that a refusal can name it.
pub type SeenFingerprint = Arc<Mutex<Option<Fingerprint>>>;

/// Checks the listener's certificate against the fingerprint the caller expects (if any).
#[derive(Debug)]
struct PinnedServerVerifier {
    expected: Option<Fingerprint>,
    seen: SeenFingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(presented);
        match self.expected {
            Some(expected) if expected != presented => {
                Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Requires a client certificate and proof of its key; which callers are welcome is
/// decided after the handshake from their fingerprint.
#[derive(Debug)]
struct RequireClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RequireClientCert {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The listener's TLS: TLS 1.3 only, client certificate required, our ALPN.
pub fn server_config(identity: &Identity) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(RequireClientCert { algorithms: provider.signature_verification_algorithms });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    // Every call is a full handshake (identities are checked each time), so a session
    // ticket would only be bytes handed to whoever sends an Initial.
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The caller's TLS: TLS 1.3 only, presents our certificate, pins `expected` if given,
/// and records what the listener presented in `seen`.
pub fn client_config(
    identity: &Identity,
    expected: Option<Fingerprint>,
    seen: SeenFingerprint,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let verifier =
        Arc::new(PinnedServerVerifier { expected, seen, algorithms: provider.signature_verification_algorithms });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_error_prints_the_reason_once() {
        let error = anyhow::Error::from(TlsError::from(rustls::Error::General("failed to parse private key".into())));
        assert_eq!(format!("{error:#}"), "TLS set-up: unexpected error: failed to parse private key");
    }
}
