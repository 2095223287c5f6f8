//! Which QUIC connection attempts a listener takes on. An address that has not proved it
//! can receive what we send (a Retry token) is answered with a Retry and nothing else: a
//! spoofed or one-off Initial then costs one small packet and no state, whoever sends it.
//! Handshakes in progress are bounded in all and per source network, so stalled ones
//! cannot crowd out a real caller. Sans IO: the listener asks, this answers.

use std::collections::HashMap;
use std::net::IpAddr;

/// The bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Handshakes in progress at once, from everyone.
    pub total: usize,
    /// Handshakes in progress at once from one source network (an IPv4 address, or an
    /// IPv6 /64: one household or one attacker either way).
    pub per_source: usize,
}

/// What to do with one connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead with the handshake; call `finished` when it is over.
    Accept,
    /// Ask the sender to prove its address first (QUIC Retry).
    Retry,
    /// Too many handshakes in progress: refuse it.
    Refuse,
}

/// The handshakes in progress.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    by_source: HashMap<IpAddr, usize>,
    total: usize,
}

/// The network an address counts against: itself for IPv4 (and IPv4-mapped IPv6), its /64
/// for IPv6.
fn source_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        Self { limits, by_source: HashMap::new(), total: 0 }
    }

    /// Decides on an attempt from `source`; `validated` when it carries a Retry token.
    pub fn decide(&mut self, source: IpAddr, validated: bool) -> Decision {
        if !validated {
            return Decision::Retry;
        }
        let network = source_network(source);
        let from_source = self.by_source.get(&network).copied().unwrap_or(0);
        if self.total >= self.limits.total || from_source >= self.limits.per_source {
            return Decision::Refuse;
        }
        self.total += 1;
        self.by_source.insert(network, from_source + 1);
        Decision::Accept
    }

    /// A handshake accepted from `source` is over, however it ended.
    pub fn finished(&mut self, source: IpAddr) {
        let network = source_network(source);
        if let Some(count) = self.by_source.get_mut(&network) {
            *count -= 1;
            self.total -= 1;
            if *count == 0 {
                self.by_source.remove(&network);
            }
        }
    }

    /// Handshakes in progress.
    pub fn in_progress(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: AdmissionLimits = AdmissionLimits { total: 5, per_source: 2 };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_unproven_address_is_always_asked_to_retry_and_costs_nothing() {
        let mut admission = Admission::new(LIMITS);
        for _ in 0..1000 {
            assert_eq!(admission.decide(ip("192.0.2.1"), false), Decision::Retry);
        }
        assert_eq!(admission.in_progress(), 0);
        assert_eq!(admission.decide(ip("192.0.2.1"), true), Decision::Accept);
    }

    #[test]
    fn one_source_cannot_take_every_handshake() {
        let mut admission = Admission::new(LIMITS);
        assert_eq!(admission.decide(ip("192.0.2.1"), true), Decision::Accept);
        assert_eq!(admission.decide(ip("192.0.2.1"), true), Decision::Accept);
        assert_eq!(admission.decide(ip("192.0.2.1"), true), Decision::Refuse);
        // The same address seen through an IPv6 socket counts the same.
        assert_eq!(admission.decide(ip("::ffff:192.0.2.1"), true), Decision::Refuse);
        assert_eq!(admission.decide(ip("192.0.2.2"), true), Decision::Accept);
        admission.finished(ip("192.0.2.1"));
        assert_eq!(admission.decide(ip("192.0.2.1"), true), Decision::Accept);
    }

    #[test]
    fn an_ipv6_network_counts_as_one_source() {
        let mut admission = Admission::new(LIMITS);
        assert_eq!(admission.decide(ip("2001:db8:1:2::1"), true), Decision::Accept);
        assert_eq!(admission.decide(ip("2001:db8:1:2:ffff::9"), true), Decision::Accept);
        assert_eq!(admission.decide(ip("2001:db8:1:2::3"), true), Decision::Refuse);
        assert_eq!(admission.decide(ip("2001:db8:1:3::1"), true), Decision::Accept);
    }

    #[test]
    fn the_total_is_bounded_and_freed_as_handshakes_end() {
        let mut admission = Admission::new(LIMITS);
        for i in 1..=5 {
            assert_eq!(admission.decide(ip(&format!("192.0.2.{i}")), true), Decision::Accept);
        }
        assert_eq!(admission.decide(ip("192.0.2.9"), true), Decision::Refuse);
        assert_eq!(admission.in_progress(), 5);
        admission.finished(ip("192.0.2.3"));
        assert_eq!(admission.decide(ip("192.0.2.9"), true), Decision::Accept);
        // A source with nothing in progress changes nothing.
        admission.finished(ip("198.51.100.1"));
        assert_eq!(admission.in_progress(), 5);
    }
}
