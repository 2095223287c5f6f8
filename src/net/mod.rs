//! Everything between the two peers: identity and TLS, QUIC endpoints, the wire format,
//! the control stream, video streams and clock synchronisation.

pub mod clock;
pub mod endpoint;
pub mod identity;
pub mod known_peers;
pub mod tls;
pub mod wire;
