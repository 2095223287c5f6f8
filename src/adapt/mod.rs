//! Rate adaptation, sans IO: how much video the path carries now, and what the sender
//! makes of it. Pure state machines fed with events and the current time (microseconds
//! on the caller's monotonic clock); threads and tasks only move bytes to and from them.
//!
//! ```text
//!  receiver                                  sender
//!  video_in: each complete frame             datagram reader: Datagram::decode
//!    -> ReceiveMeter::on_frame                 -> BandwidthEstimator::on_report
//!  every REPORT_INTERVAL_US (100 ms):        every 100 ms: quinn's Connection::stats().path
//!    ReceiveMeter::report(now).encode()        -> BandwidthEstimator::on_transport_stats
//!    -> one report datagram  ──────────►     after either: Policy::update(now, estimate)
//!                                              -> Some(Target): bitrate, size, fps to the encoder
//!                                            quinn's send window:
//!                                              pacing::send_window_bytes(estimate, min rtt)
//! ```
//!
//! Where the call (`call.rs`) feeds them:
//! - receiver: `video_in` feeds every whole frame to a `ReceiveMeter` (arrival on the
//!   local clock, capture time and seq from the frame header, bytes on the wire); every
//!   `REPORT_INTERVAL_US` the call loop sends `report(now)` as a report datagram.
//! - sender: the call loop owns a `RateController` (estimator and policy). Reports and,
//!   every 100 ms, quinn's path statistics go in; a new `Target` goes to the encoder thread
//!   through a watch channel, and `send_window_bytes` to `Connection::set_send_window`.
//! - both: `Liveness` is told every 100 ms whether anything arrived; an outage shows as
//!   "reconnecting…", and the return of the link restarts the video group.
//! - sender: while quinn counts lost packets, the controller asks for redundant audio
//!   (`AudioRedundancy`), which the datagram sender carries out.
//! - sender: once the estimate has been cut and is below its ceiling, the controller gives
//!   the video writer a pacing rate (`video_pacer`), and pictures leave a packet at a time.
//! - both: the sender's controller asks now and then for a probe cluster of padding
//!   datagrams (`probe`); the receiver's `ProbeMeter` measures it and sends the result back
//!   at once; what the cluster showed goes to the estimator.

pub mod audio_redundancy;
pub mod controller;
pub mod counter_rate;
pub mod cpu_load;
pub mod estimator;
pub mod keyframes;
pub mod ladder;
pub mod liveness;
pub mod loss_sampler;
#[cfg(test)]
mod model_link;
pub mod overuse;
pub mod pacing;
pub mod policy;
pub mod probe;
pub mod probe_meter;
pub mod receive_meter;
pub mod report;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod simulated_call;
pub mod trendline;
pub mod video_groups;
pub mod video_pacer;

/// Audio's share of the path, kbit/s: Opus at 24 kbit/s plus its 17-byte datagram header
/// 100 times a second (13.6 kbit/s), rounded up.
pub const AUDIO_KBPS: u32 = 40;
/// The sender uses this share of the estimate for media: the rest absorbs the estimate's
/// error and the keyframes' bursts (moq's 0.9). The estimator's ramp-up allows for it.
pub const HEADROOM: f64 = 0.9;
/// How often the receiver reports: GCC's feedback comes about this often, and a rate
/// change shows within two reports.
pub const REPORT_INTERVAL_US: u64 = 100_000;
