//! Rate adaptation, sans IO: how much video the path carries now, and what the sender
//! makes of it. Pure state machines fed with events and the current time (microseconds
//! on the caller's monotonic clock); threads and tasks only move bytes to and from them.

pub mod report;
