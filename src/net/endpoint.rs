//! QUIC endpoints for listening and calling: transport settings chosen for a live call
//! (fast loss detection of a vanished peer, windows big enough for keyframes, opened only
//! once both sides have decided to talk), and the application close codes both peers
//! understand.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, Endpoint, IdleTimeout, TransportConfig, VarInt};

use super::identity::Fingerprint;
use super::identity::Identity;
use super::tls::{self, SeenFingerprint};

/// A peer that sends nothing (not even keep-alives) for this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a caller waits for the listener to answer. The caller's own idle timeout is
/// this long, so a slow path gets its whole time; once the handshake is done, QUIC takes
/// the smaller of the two sides' timeouts, the listener's `IDLE_TIMEOUT`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const KEEP_ALIVE: Duration = Duration::from_millis(500);

/// Why a call was closed, carried in QUIC's application close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// A person hung up (or the call's duration ran out).
    HangUp = 0,
    /// The listener is already in a call.
    Busy = 1,
    /// The peer broke the protocol.
    ProtocolError = 2,
    /// The peer refused our identity.
    Refused = 3,
    /// The listener cannot take calls at all (its known-peers file is broken).
    CannotAnswer = 4,
}

impl CloseCode {
    pub fn code(self) -> VarInt {
        VarInt::from_u32(self as u32)
    }

    pub fn from_code(code: VarInt) -> Option<Self> {
        [Self::HangUp, Self::Busy, Self::ProtocolError, Self::Refused, Self::CannotAnswer]
            .into_iter()
            .find(|c| c.code() == code)
    }
}

/// TLS alert numbers that QUIC carries as CRYPTO_ERROR (0x100 + alert).
const ALERT_NO_APPLICATION_PROTOCOL: u64 = 0x100 + 120;
const ALERT_CERTIFICATE_REQUIRED: u64 = 0x100 + 116;
/// Alerts that mean "I do not accept your certificate or your proof of its key".
const IDENTITY_ALERTS: [u64; 6] = [
    0x100 + 42,  // bad_certificate
    0x100 + 46,  // certificate_unknown
    0x100 + 48,  // unknown_ca
    0x100 + 49,  // access_denied: rustls's answer to a pinning failure
    0x100 + 51,  // decrypt_error: a bad handshake signature
    0x100 + 116, // certificate_required
];

/// Failures of the QUIC layer.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The UDP socket could not be opened.
    #[error(
        "cannot use UDP address {addr}: {error} (is another chat already listening there? try --listen with another port)"
    )]
    Bind { addr: SocketAddr, error: std::io::Error },
    /// The caller could not move to a fresh socket.
    #[error("cannot move the call to a fresh UDP socket: {error}")]
    Rebind { error: std::io::Error },
    /// The TLS configuration could not be made.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// quinn refused the TLS configuration.
    #[error("QUIC TLS set-up: {0}")]
    Crypto(String),
    /// The connection attempt could not start.
    #[error("cannot call {addr}: {error}")]
    Connect { addr: SocketAddr, error: quinn::ConnectError },
}

/// What a peer may send before this side has decided to talk to it (a listener asking its
/// user, say): room for the hello on the control stream, no video stream at all. So a
/// caller waiting for an answer costs a few KiB, whatever it sends.
const UNDECIDED_RECEIVE_WINDOW: u32 = 16 << 10;
/// What it may send during a call: keyframes of 8K pictures fit.
const CALL_RECEIVE_WINDOW: u32 = 32 << 20;
/// Video streams open at once during a call: one per group of pictures, a handful live.
const CALL_VIDEO_STREAMS: u32 = 16;
/// Audio datagrams waiting to be read (a few seconds of sound).
const DATAGRAM_BUFFER: usize = 64 << 10;
/// Audio datagrams waiting to be sent: room for the largest Opus packet (1275 bytes, our
/// 17-byte header and quinn's 32 bytes of bookkeeping), which is 280 ms of our 24 kbit/s
/// packets (47 bytes). When the path is blocked, quinn drops the oldest first, so sound
/// is never sent stale (16 KiB held 3.4 s). Datagrams go out ahead of stream data in
/// every packet quinn builds.
const DATAGRAM_SEND_BUFFER: usize = 1400;

fn transport(idle_timeout: Duration) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(IdleTimeout::try_from(idle_timeout).expect("small timeout")));
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // One control stream; video streams only once the call is on (`open_for_call`).
    t.max_concurrent_bidi_streams(VarInt::from_u32(1));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.stream_receive_window(VarInt::from_u32(8 << 20));
    t.receive_window(VarInt::from_u32(UNDECIDED_RECEIVE_WINDOW));
    t.datagram_receive_buffer_size(Some(DATAGRAM_BUFFER));
    t.datagram_send_buffer_size(DATAGRAM_SEND_BUFFER);
    t.send_window(32 << 20);
    t.initial_rtt(Duration::from_millis(100));
    // BBR paces to the measured bottleneck instead of halving its window on every loss:
    // under random loss (Wi-Fi, mobile) Cubic's shrinking window queued audio datagrams
    // behind video and tripled the delay of both (tests/call.rs, the lossy relay test).
    t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    Arc::new(t)
}

/// An endpoint that accepts calls on `addr`. The IPv6 wildcard `[::]` takes IPv4 callers
/// too (as IPv4-mapped addresses); where the system has no IPv6 at all, it falls back to
/// the IPv4 wildcard on the same port.
pub fn listener(addr: SocketAddr, identity: &Identity) -> Result<Endpoint, EndpointError> {
    let crypto =
        QuicServerConfig::try_from(tls::server_config(identity)?).map_err(|e| EndpointError::Crypto(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(IDLE_TIMEOUT));
    let socket = match bind_listening_socket(addr) {
        Err(error) if addr.ip() == Ipv6Addr::UNSPECIFIED && no_ipv6(&error) => {
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
            tracing::info!(%error, "no IPv6 on this system: listening on IPv4 only");
            bind_listening_socket(v4).map_err(|error| EndpointError::Bind { addr: v4, error })?
        }
        other => other.map_err(|error| EndpointError::Bind { addr, error })?,
    };
    let runtime = quinn::default_runtime().ok_or_else(|| EndpointError::Crypto("no async runtime".into()))?;
    Endpoint::new(quinn::EndpointConfig::default(), Some(config), socket, runtime)
        .map_err(|error| EndpointError::Bind { addr, error })
}

/// A UDP socket on `addr`; on the IPv6 wildcard, one that takes IPv4 as well.
fn bind_listening_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Whether a bind failed because the system has no IPv6 (disabled, or no kernel support).
fn no_ipv6(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    if error.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error()) {
        return true;
    }
    error.kind() == std::io::ErrorKind::AddrNotAvailable
}

/// What a listening address takes, for the start-up line.
pub fn families(local: SocketAddr) -> &'static str {
    match local {
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => "IPv6 and IPv4",
        SocketAddr::V6(_) => "IPv6",
        SocketAddr::V4(_) => "IPv4",
    }
}

/// An address as people write it: an IPv4 caller reaching a dual-stack listener shows as
/// `[::ffff:192.0.2.7]:5000`, which is `192.0.2.7:5000`.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Lets the peer's call in: the receive window and video streams a call needs. Until this,
/// a connection takes only the hello.
pub fn open_for_call(conn: &quinn::Connection) {
    conn.set_receive_window(VarInt::from_u32(CALL_RECEIVE_WINDOW));
    conn.set_max_concurrent_uni_streams(VarInt::from_u32(CALL_VIDEO_STREAMS));
}

/// An endpoint for calling out, on an ephemeral port of the peer's address family.
pub fn caller(peer: SocketAddr) -> Result<Endpoint, EndpointError> {
    let local: SocketAddr = match peer {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    Endpoint::client(local).map_err(|error| EndpointError::Bind { addr: local, error })
}

/// Moves the caller's endpoint to a fresh socket (a new port, and whatever address the
/// system routes from now) without a new handshake: QUIC migrates the connection. Returns
/// the new local address.
pub fn rebind(endpoint: &Endpoint) -> Result<SocketAddr, EndpointError> {
    let local: SocketAddr = match endpoint.local_addr() {
        Ok(SocketAddr::V6(_)) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        _ => (Ipv4Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(local).map_err(|error| EndpointError::Rebind { error })?;
    let bound = socket.local_addr().map_err(|error| EndpointError::Rebind { error })?;
    endpoint.rebind(socket).map_err(|error| EndpointError::Rebind { error })?;
    Ok(bound)
}

/// Starts a call to `peer`, pinning `expected` if given; `seen` receives what it presented.
pub fn connect(
    endpoint: &Endpoint,
    peer: SocketAddr,
    identity: &Identity,
    expected: Option<Fingerprint>,
    seen: SeenFingerprint,
) -> Result<quinn::Connecting, EndpointError> {
    let crypto = QuicClientConfig::try_from(tls::client_config(identity, expected, seen)?)
        .map_err(|e| EndpointError::Crypto(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(CONNECT_TIMEOUT));
    endpoint.connect_with(config, peer, tls::SERVER_NAME).map_err(|error| EndpointError::Connect { addr: peer, error })
}

/// How a connection ended, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// We closed it.
    Local,
    /// The peer hung up.
    PeerHungUp,
    /// The peer is in another call.
    Busy,
    /// The peer stopped answering.
    Vanished,
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// One side refused the other's identity.
    IdentityRefused,
    /// The listener cannot take calls; its reason.
    CannotAnswer(String),
    /// The peer broke the protocol, and we ended the call; what it did.
    ProtocolViolation(String),
    /// Anything else, described.
    Other(String),
}

impl Ending {
    pub fn of(error: &ConnectionError) -> Self {
        match error {
            ConnectionError::LocallyClosed => Self::Local,
            ConnectionError::TimedOut => Self::Vanished,
            ConnectionError::ApplicationClosed(close) => match CloseCode::from_code(close.error_code) {
                Some(CloseCode::HangUp) => Self::PeerHungUp,
                Some(CloseCode::Busy) => Self::Busy,
                Some(CloseCode::Refused) => Self::IdentityRefused,
                Some(CloseCode::CannotAnswer) => {
                    Self::CannotAnswer(String::from_utf8_lossy(&close.reason).into_owned())
                }
                _ => Self::Other(format!("the peer closed the call: {}", String::from_utf8_lossy(&close.reason))),
            },
            ConnectionError::ConnectionClosed(close) => Self::of_transport_code(close.error_code.into(), error),
            ConnectionError::TransportError(e) => Self::of_transport_code(e.code.into(), error),
            other => Self::Other(other.to_string()),
        }
    }

    fn of_transport_code(code: u64, error: &ConnectionError) -> Self {
        match code {
            ALERT_NO_APPLICATION_PROTOCOL => Self::VersionMismatch,
            code if IDENTITY_ALERTS.contains(&code) => Self::IdentityRefused,
            _ => Self::Other(error.to_string()),
        }
    }
}

/// Why a caller's handshake with this listener failed, in words for the listener's user.
/// Unlike `Ending`, this tells what the caller did wrong from what our own TLS refused.
pub fn caller_handshake_failure(error: &ConnectionError) -> String {
    if let ConnectionError::TransportError(e) = error {
        match u64::from(e.code) {
            ALERT_CERTIFICATE_REQUIRED => return "it presented no certificate (only chat peers can call)".into(),
            ALERT_NO_APPLICATION_PROTOCOL => return "it speaks another protocol, or another version of chat's".into(),
            code if IDENTITY_ALERTS.contains(&code) => {
                return format!("its certificate or its proof of the key was not valid ({e})");
            }
            _ => {}
        }
    }
    match Ending::of(error) {
        Ending::IdentityRefused => {
            "it refused this peer's identity (it remembers another fingerprint for this address, or pinned another)"
                .into()
        }
        Ending::VersionMismatch => "it speaks another version of the chat protocol".into(),
        Ending::Vanished => "it stopped answering during the handshake".into(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_round_trip() {
        for code in
            [CloseCode::HangUp, CloseCode::Busy, CloseCode::ProtocolError, CloseCode::Refused, CloseCode::CannotAnswer]
        {
            assert_eq!(CloseCode::from_code(code.code()), Some(code));
        }
        assert_eq!(CloseCode::from_code(VarInt::from_u32(99)), None);
    }
}
