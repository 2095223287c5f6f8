//! Rate adaptation, sans IO: how much video the path carries now, and what the sender
//! makes of it. Pure state machines fed with events and the current time (microseconds
//! on the caller's monotonic clock); threads and tasks only move bytes to and from them.

pub mod estimator;
pub mod loss_sampler;
pub mod overuse;
pub mod receive_meter;
pub mod report;
pub mod trendline;

/// Audio's share of the path, kbit/s: Opus at 24 kbit/s plus its 17-byte datagram header
/// 100 times a second (13.6 kbit/s), rounded up.
pub const AUDIO_KBPS: u32 = 40;

/// How often the receiver reports: GCC's feedback comes about this often, and a rate
/// change shows within two reports.
pub const REPORT_INTERVAL_US: u64 = 100_000;
