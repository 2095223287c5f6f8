//! `chat`: a peer-to-peer video call, with sound, over QUIC.
//!
//! ```text
//!  camera / pattern / y4m ─► capture thread ─► encoder thread ─► video_out ─┐  QUIC: one uni
//!                              │ (latest wins)   (H.264)                    │  stream per group
//!                              ▼                                            ▼  of pictures
//!                           preview ─► window ◄─ remote ◄─ decoder thread ◄─ video_in
//!                                     (main thread)   (H.264, PSNR, latency, ▲
//!                                                      held for lip sync)    │ audio delay
//!  mic ─► ring ─► audio sender ─► datagrams ─► audio in ─► playout thread ─► ring ─► speaker
//!  (cpal)         (Opus)          (QUIC)                   (jitter buffer)          (cpal)
//!  control stream (bidirectional): hello, keyframe requests, clock pings, media state,
//!  receiver reports (for the peer's rate adaptation, `adapt`), hang-up
//! ```
//!
//! Every hand-off keeps only the newest item or is bounded and drops, so a slow stage
//! skips pictures instead of building a queue.
// Denied, not forbidden: `media::encoder_options` alone allows it, to change a live encoder.
#![deny(unsafe_code)]

pub mod adapt;
pub mod adaptation;
pub mod app;
pub mod call;
pub mod cli;
pub mod histogram;
pub mod latest;
pub mod media;
pub mod net;
pub mod peer;
pub mod prompt;
pub mod reachability;
pub mod stats;
pub mod view;
