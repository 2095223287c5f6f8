//! `chat`: a peer-to-peer video call over QUIC.
pub mod latest;
pub mod media;
pub mod net;
