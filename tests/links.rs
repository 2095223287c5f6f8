//! The test links themselves: the link model in simulated time.

mod common;

use std::time::Duration;

use common::link::{Bottleneck, DropCause, Fate, Link, LinkPlan, WIRE_OVERHEAD_BYTES};

const MS: Duration = Duration::from_millis(1);

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds)
}

/// Feeds `link` datagrams of `payload` bytes at `rate_bps` (payload bits) from time zero
/// until `until`; returns each arrival time with its fate.
fn offer(link: &mut Link, rate_bps: u64, payload: usize, until: Duration) -> Vec<(Duration, Fate)> {
    let gap = Duration::from_nanos(payload as u64 * 8 * 1_000_000_000 / rate_bps);
    let mut fates = Vec::new();
    let mut at = Duration::ZERO;
    while at < until {
        fates.push((at, link.admit(at, payload)));
        at += gap;
    }
    fates
}

/// Wire bits per second delivered with departure times in `window`.
fn delivered_rate(fates: &[(Duration, Fate)], payload: usize, window: std::ops::Range<Duration>) -> f64 {
    let delivered = fates.iter().filter(|(_, fate)| matches!(fate, Fate::Delivered(at) if window.contains(at))).count();
    (delivered * (payload + WIRE_OVERHEAD_BYTES) * 8) as f64 / (window.end - window.start).as_secs_f64()
}

fn max_sojourn(fates: &[(Duration, Fate)]) -> Duration {
    fates
        .iter()
        .filter_map(|(at, fate)| if let Fate::Delivered(out) = fate { Some(*out - *at) } else { None })
        .max()
        .unwrap()
}

#[test]
fn a_bottleneck_passes_its_rate_and_holds_no_more_than_its_queue_limit() {
    let plan = LinkPlan::default().limit_from(Duration::ZERO, Some(Bottleneck::rate(1_000_000).queue_delay(100 * MS)));
    let fates = offer(&mut Link::new(plan, 1), 3_000_000, 1200, secs(10.0));
    let rate = delivered_rate(&fates, 1200, secs(1.0)..secs(10.0));
    assert!((rate - 1_000_000.0).abs() < 5_000.0, "delivered {rate} bit/s through 1 Mbit/s");
    let sojourn = max_sojourn(&fates);
    assert!(sojourn <= 100 * MS && sojourn > 90 * MS, "longest time in the link: {sojourn:?}");
    // One after another, never closer than a datagram's serialisation (9.824 ms).
    let mut departures: Vec<Duration> =
        fates.iter().filter_map(|(_, fate)| if let Fate::Delivered(at) = fate { Some(*at) } else { None }).collect();
    departures.sort();
    assert!(departures.windows(2).all(|pair| pair[1] - pair[0] >= Duration::from_micros(9_824)));
    let queue_drops = fates.iter().filter(|(_, fate)| *fate == Fate::Dropped(DropCause::Queue)).count();
    assert!((queue_drops as f64 / fates.len() as f64 - 2.0 / 3.0).abs() < 0.01, "{queue_drops} of {}", fates.len());
    println!("model: 3 Mbit/s into 1 Mbit/s, 100 ms queue: {rate:.0} bit/s out, longest stay {sojourn:?}");
}

#[test]
fn a_byte_limited_queue_holds_no_more_than_its_bytes() {
    // Ten datagrams of 1228 wire bytes: at most ten serialisations (98.24 ms) in the link.
    let plan = LinkPlan::default().limit_from(Duration::ZERO, Some(Bottleneck::rate(1_000_000).queue_bytes(10 * 1228)));
    let fates = offer(&mut Link::new(plan, 1), 3_000_000, 1200, secs(5.0));
    let sojourn = max_sojourn(&fates);
    assert!(sojourn <= Duration::from_micros(98_240) && sojourn > 88 * MS, "longest time in the link: {sojourn:?}");
}

#[test]
fn the_bottleneck_follows_its_schedule() {
    let limit = |rate| Some(Bottleneck::rate(rate).queue_delay(200 * MS));
    let plan = LinkPlan::default()
        .limit_from(secs(4.0), limit(500_000))
        .limit_from(Duration::ZERO, limit(3_000_000))
        .limit_from(secs(8.0), limit(3_000_000))
        .limit_from(secs(12.0), None);
    let fates = offer(&mut Link::new(plan, 1), 4_000_000, 1200, secs(14.0));
    let rates: Vec<f64> = [0.5..4.0, 4.5..8.0, 8.5..12.0, 12.5..14.0]
        .into_iter()
        .map(|window| delivered_rate(&fates, 1200, secs(window.start)..secs(window.end)))
        .collect();
    for (rate, expected) in rates.iter().zip([3_000_000.0, 500_000.0, 3_000_000.0, 4_000_000.0 * 1228.0 / 1200.0]) {
        assert!((rate - expected).abs() < 0.02 * expected, "{rates:?}");
    }
}

#[test]
fn an_outage_drops_what_reaches_or_would_leave_the_link_in_its_window_and_nothing_else() {
    // No bottleneck: exactly the arrivals in the window.
    let plan = LinkPlan::default().outage(secs(1.0)..secs(2.0));
    let fates = offer(&mut Link::new(plan, 1), 960_000, 1200, secs(3.0));
    for (at, fate) in &fates {
        let down = (secs(1.0)..secs(2.0)).contains(at);
        assert_eq!(*fate == Fate::Dropped(DropCause::Outage), down, "at {at:?}: {fate:?}");
        assert!(down || *fate == Fate::Delivered(*at), "at {at:?}: {fate:?}");
    }
    // Behind a bottleneck: what was queued but would leave in the window is lost too.
    let plan = LinkPlan::default()
        .limit_from(Duration::ZERO, Some(Bottleneck::rate(1_000_000).queue_delay(100 * MS)))
        .outage(secs(1.0)..secs(2.0));
    let fates = offer(&mut Link::new(plan, 1), 3_000_000, 1200, secs(3.0));
    let outage: Vec<_> = fates.iter().filter(|(_, fate)| *fate == Fate::Dropped(DropCause::Outage)).collect();
    assert!(outage.iter().any(|(at, _)| *at < secs(1.0)), "queued datagrams due in the window");
    for (at, fate) in &fates {
        if let Fate::Delivered(out) = fate {
            assert!(!(secs(1.0)..secs(2.0)).contains(out), "{at:?} came out at {out:?}, in the outage");
        }
    }
}

#[test]
fn loss_and_jitter_are_seeded_and_as_configured() {
    let plan = LinkPlan { loss: 0.02, delay: 20 * MS, jitter: 10 * MS, ..LinkPlan::default() };
    let run = |seed| offer(&mut Link::new(plan.clone(), seed), 9_600_000, 1200, secs(100.0));
    let (first, again, other) = (run(7), run(7), run(8));
    assert_eq!(first, again);
    assert_ne!(first, other);
    let lost = first.iter().filter(|(_, fate)| *fate == Fate::Dropped(DropCause::Loss)).count();
    let share = lost as f64 / first.len() as f64;
    assert!((share - 0.02).abs() < 0.002, "lost {share} of {}", first.len());
    for (at, fate) in &first {
        if let Fate::Delivered(out) = fate {
            assert!(*out >= *at + 20 * MS && *out < *at + 30 * MS, "{at:?} -> {out:?}");
        }
    }
}
