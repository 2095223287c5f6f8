//! Rate adaptation, sans IO: how much video the path carries now, and what the sender
//! makes of it. Pure state machines fed with events and the current time (microseconds
//! on the caller's monotonic clock); threads and tasks only move bytes to and from them.
//!
//! ```text
//!  receiver                                  sender
//!  video_in: each complete frame             control reader: ReceiverReport::decode
//!    -> ReceiveMeter::on_frame                 -> BandwidthEstimator::on_report
//!  every REPORT_INTERVAL_US (100 ms):        every 100 ms: quinn's Connection::stats().path
//!    ReceiveMeter::report(now).encode()        -> BandwidthEstimator::on_transport_stats
//!    -> one control message  ──────────►     after either: Policy::update(now, estimate)
//!                                              -> Some(Target): bitrate, size, fps to the encoder
//!                                            encoder thread, before each picture:
//!                                              pacing::skip_picture(queued bytes, estimate)
//! ```
//!
//! Wiring, for the integrator:
//! - receiver: the task reading video streams owns a `ReceiveMeter`; it feeds every frame
//!   it reads whole (arrival = local monotonic time, capture and seq from the frame
//!   header, bytes on the wire), and every 100 ms (a timer in the same task) sends
//!   `report(now).encode()` on the control stream. If the sender announces frames it
//!   numbered and dropped, `on_sender_skipped(total)` keeps them out of the loss count.
//! - sender: one task owns the `BandwidthEstimator` and the `Policy` (the control stream's
//!   reader, with a 100 ms timer for quinn's statistics); it hands each new `Target` to the
//!   encoder thread (as a latest-wins slot) and publishes the estimate (an atomic) for the
//!   encoder thread's pacing check, which also needs the video bytes handed to the
//!   transport and not yet sent (quinn does not count those: the sender has to).
//! - bounds: `EstimateBounds { floor_kbps: estimate_for_video_kbps(VIDEO_FLOOR_KBPS),
//!   ceiling_kbps: estimate_for_video_kbps(--bitrate) }`; start at the ceiling's estimate
//!   or lower, as the call's first seconds may show.

pub mod controller;
pub mod estimator;
pub mod ladder;
pub mod loss_sampler;
#[cfg(test)]
mod model_link;
pub mod overuse;
pub mod pacing;
pub mod policy;
pub mod receive_meter;
pub mod report;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod simulated_call;
pub mod trendline;

/// Audio's share of the path, kbit/s: Opus at 24 kbit/s plus its 17-byte datagram header
/// 100 times a second (13.6 kbit/s), rounded up.
pub const AUDIO_KBPS: u32 = 40;
/// The sender uses this share of the estimate for media: the rest absorbs the estimate's
/// error and the keyframes' bursts (moq's 0.9). The estimator's ramp-up allows for it.
pub const HEADROOM: f64 = 0.9;
/// How often the receiver reports: GCC's feedback comes about this often, and a rate
/// change shows within two reports.
pub const REPORT_INTERVAL_US: u64 = 100_000;
