//! Everything between the two peers: identity and TLS, QUIC endpoints, the wire format,
//! the control stream, video streams, audio datagrams and clock synchronisation.

pub mod admission;
pub mod clock;
pub mod control;
pub mod control_framing;
pub mod datagrams;
pub mod endpoint;
pub mod flood_guard;
pub mod gateway;
pub mod identity;
pub mod known_peers;
pub mod nat_pmp;
pub mod pcp;
pub mod port_map;
pub mod port_map_keeper;
pub mod port_probe;
pub mod private_file;
pub mod raw;
pub mod router_exchange;
pub mod safety;
#[cfg(unix)]
pub mod strict_modes;
pub mod tls;
pub mod trust;
pub mod upnp;
pub mod video_in;
pub mod video_out;
pub mod wire;
