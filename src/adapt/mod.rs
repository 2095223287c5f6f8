//! Rate adaptation, sans IO: how much video the path carries now, and what the sender
//! makes of it. Pure state machines fed with events and the current time (microseconds
//! on the caller's monotonic clock); threads and tasks only move bytes to and from them.

pub mod receive_meter;
pub mod report;
pub mod trendline;

/// How often the receiver reports: GCC's feedback comes about this often, and a rate
/// change shows within two reports.
pub const REPORT_INTERVAL_US: u64 = 100_000;
