//! Raw mode: the Python streamer's wire format (TCP, 8-byte length, numpy pickle of a BGR
//! picture), both ways, with a reader that never runs what the peer sends.
//! Unencrypted and unauthenticated by design of that format.

pub mod call;
pub mod deadline;
pub mod framing;
pub mod peer;
pub mod pickle_read;
pub mod pickle_write;
pub mod progress;
