//! The targets, as behaviour of the whole loop in simulated time (test only): a
//! capacity drop and its restore, a constant link, random loss, an outage, the ladder.
//! Each runs with ten seeds (picture sizes, loss draws), so no target holds by the luck
//! of one draw; the first seed's trace is printed (`--nocapture`).

use super::AUDIO_KBPS;
use super::model_link::LinkConfig;
use super::policy::{VIDEO_FLOOR_KBPS, estimate_for_video_kbps};
use super::simulated_call::{CallConfig, CallTrace, Sample, simulate};

const SECOND: u64 = 1_000_000;
const SEEDS: std::ops::RangeInclusive<u64> = 1..=10;
/// The call's ceiling (`CallConfig::hd`).
const CEILING_KBPS: u32 = 1_900;

/// Runs `config` for every seed and prints the first trace.
fn run_seeds(name: &str, link: LinkConfig, duration_s: u64) -> Vec<CallTrace> {
    let traces: Vec<CallTrace> = SEEDS
        .map(|seed| simulate(CallConfig { seed, ..CallConfig::hd(LinkConfig { seed, ..link.clone() }, duration_s) }))
        .collect();
    println!("{name}, seed 1:\n{}", traces[0].per_second());
    traces
}

/// The smallest and largest of some figures, for the printout.
fn range<T: Ord + Copy>(figures: &[T]) -> (T, T) {
    (*figures.iter().min().expect("figures"), *figures.iter().max().expect("figures"))
}

#[test]
fn a_capacity_drop_is_followed_down_within_two_seconds_and_back_up_within_five() {
    let link = LinkConfig {
        rate_schedule: vec![(0, 3_000), (12 * SECOND, 500), (24 * SECOND, 3_000)],
        ..LinkConfig::constant(0)
    };
    let traces = run_seeds("3 -> 0.5 Mbit/s at 12 s -> 3 at 24 s, 40 ms RTT", link, 34);
    let (mut fall_ms, mut settled_ms, mut recovered_percent, mut back_ms) = (vec![], vec![], vec![], vec![]);
    for trace in &traces {
        let before = trace.target_at(12.0).video_kbps;
        let under_link = |sample: &&Sample| sample.target.video_kbps + AUDIO_KBPS < sample.link_kbps;
        let fell = trace.between(12.0, 24.0).find(under_link).expect("falls under the link");
        fall_ms.push((fell.at_us - 12 * SECOND) / 1000);
        settled_ms.push(trace.max_queue_delay_ms(14.0, 24.0));
        recovered_percent.push(trace.target_at(29.0).video_kbps * 100 / before);
        let back = trace.between(24.0, 34.0).find(|sample| sample.target.video_kbps * 10 >= before * 9);
        back_ms.push(back.map_or(u64::MAX, |sample| (sample.at_us - 24 * SECOND) / 1000));
    }
    println!(
        "under the link after {:?} ms; worst queue from 2 s after the drop {:?} ms; \
         5 s after the restore at {:?} % of the target before the drop, 90 % of it after {:?} ms",
        range(&fall_ms),
        range(&settled_ms),
        range(&recovered_percent),
        range(&back_ms)
    );
    assert!(fall_ms.iter().all(|&ms| ms <= 2_000));
    assert!(settled_ms.iter().all(|&ms| ms < 150));
    assert!(recovered_percent.iter().all(|&percent| percent >= 75));
    // Probes find the room within a second or two (without them, 3.1-5.2 s).
    assert!(back_ms.iter().all(|&ms| ms <= 4_000));
}

#[test]
fn a_constant_link_settles_below_its_rate_with_a_short_queue() {
    let traces = run_seeds("constant 1 Mbit/s, 40 ms RTT", LinkConfig::constant(1_000), 40);
    let (mut mean_kbps, mut lowest_kbps, mut worst_ms) = (vec![], vec![], vec![]);
    for trace in &traces {
        let settled: Vec<&Sample> = trace.between(10.0, 40.0).collect();
        let sent: u32 = settled.iter().map(|sample| sample.target.video_kbps + AUDIO_KBPS).sum();
        mean_kbps.push(sent / settled.len() as u32);
        lowest_kbps.push(settled.iter().map(|sample| sample.target.video_kbps).min().expect("samples"));
        worst_ms.push(trace.max_queue_delay_ms(10.0, 40.0));
    }
    println!(
        "from 10 s: mean sending rate {:?} kbit/s, lowest video target {:?} kbit/s, worst queue {:?} ms",
        range(&mean_kbps),
        range(&lowest_kbps),
        range(&worst_ms)
    );
    assert!(mean_kbps.iter().all(|&kbps| (800..1_000).contains(&kbps)));
    assert!(lowest_kbps.iter().all(|&kbps| kbps > 2 * VIDEO_FLOOR_KBPS));
    // The probes' capacity keeps the estimate from creeping over the rate and being cut
    // (without them the worst queue was 37-54 ms).
    assert!(worst_ms.iter().all(|&ms| ms < 45));
}

#[test]
fn a_token_buckets_burst_does_not_lift_the_estimate_above_the_rate() {
    // A kernel tbf at 1 Mbit/s with an 8 kB bucket, as the benchmark's link has: a probe
    // cluster that finds the bucket full goes through whole at more than the rate.
    let link = LinkConfig { burst_bytes: 8_192, queue_limit_us: 200_000, ..LinkConfig::constant(1_000) };
    let traces = run_seeds("constant 1 Mbit/s through an 8 kB token bucket, 40 ms RTT", link, 40);
    let (mut mean_kbps, mut over_s, mut worst_ms, mut concealed) = (vec![], vec![], vec![], vec![]);
    for trace in &traces {
        let settled: Vec<&Sample> = trace.between(10.0, 40.0).collect();
        let sent: u32 = settled.iter().map(|sample| sample.target.video_kbps + AUDIO_KBPS).sum();
        mean_kbps.push(sent / settled.len() as u32);
        // Video and sound sent 10 % above the link's rate, in tenths of a second.
        over_s.push(settled.iter().filter(|sample| sample.target.video_kbps + AUDIO_KBPS > 1_100).count());
        worst_ms.push(trace.max_queue_delay_ms(10.0, 40.0));
        concealed.push(trace.sound_concealed_permille(0.0, 40.0));
    }
    println!(
        "from 10 s: mean sending rate {:?} kbit/s, 10 % above the rate for {:?} tenths of a second of 300, \
         worst queue {:?} ms; sound concealed {:?} per mille of the call",
        range(&mean_kbps),
        range(&over_s),
        range(&worst_ms),
        range(&concealed)
    );
    // Without probes it sent 10 % above the rate for 5.3-6.2 s of the 30, with the worst
    // queue at 108-122 ms. With them, 0.2-2.6 s and 67-104 ms when every cluster went every 2 s;
    // 0.7-2.9 s and 47-101 ms since a chain a burst carried waits 4 s (it sits within 5 % of the
    // rate more: 2.9-6.3 s above 1.05 x, was 1.8-4.8). (A cluster that finds the bucket full
    // reads high, and the estimate follows it for a while.) Within 10 % of the rate is the
    // estimate's own search at the capacity; the bucket's burst lifted it 40 % above.
    assert!(mean_kbps.iter().all(|&kbps| (800..1_000).contains(&kbps)));
    assert!(over_s.iter().all(|&tenths| tenths <= 35));
    assert!(worst_ms.iter().all(|&ms| ms < 110));
    // What the sound's jitter buffer makes of the queue that is left: 5-8 per mille of the
    // call concealed, as when every cluster went every 2 s.
    assert!(concealed.iter().all(|&permille| permille <= 8));
}

#[test]
fn random_loss_is_not_congestion() {
    let link = LinkConfig { loss: 0.02, ..LinkConfig::constant(5_000) };
    let traces = run_seeds("2 % random loss, 5 Mbit/s, 40 ms RTT", link, 30);
    let lowest: Vec<u32> = traces
        .iter()
        .map(|trace| trace.between(5.0, 30.0).map(|sample| sample.target.video_kbps).min().expect("samples"))
        .collect();
    println!("from 5 s: lowest video target {:?} kbit/s of {CEILING_KBPS}", range(&lowest));
    assert!(lowest.iter().all(|&kbps| kbps * 10 >= CEILING_KBPS * 8));
}

#[test]
fn an_outage_is_not_congestion_and_is_recovered_from() {
    let outage = 10 * SECOND..12 * SECOND;
    let link = LinkConfig { outages: vec![outage], ..LinkConfig::constant(3_000) };
    let traces = run_seeds("2 s outage at 10 s, 3 Mbit/s, 40 ms RTT", link, 20);
    let floor = estimate_for_video_kbps(VIDEO_FLOOR_KBPS);
    let (mut lowest_percent, mut back_ms, mut queue_after_ms) = (vec![], vec![], vec![]);
    for trace in &traces {
        let before = trace.between(9.0, 10.0).last().expect("sample");
        let lowest = trace.between(10.0, 20.0).map(|sample| sample.estimate_kbps).min().expect("samples");
        lowest_percent.push(lowest * 100 / before.estimate_kbps);
        // Back: frames flow again with a short queue, at 90 % of the target before.
        let back = trace.between(12.0, 20.0).find(|sample| {
            sample.queue_delay_ms.is_some_and(|ms| ms < 100)
                && sample.target.video_kbps * 10 >= before.target.video_kbps * 9
        });
        back_ms.push(back.map_or(u64::MAX, |sample| (sample.at_us - 12 * SECOND) / 1000));
        queue_after_ms.push(trace.max_queue_delay_ms(14.0, 20.0));
        assert!(lowest > 2 * floor);
    }
    println!(
        "lowest estimate {:?} % of the one before (floor {floor} kbit/s); back {:?} ms after the outage; \
         worst queue from 2 s after {:?} ms",
        range(&lowest_percent),
        range(&back_ms),
        range(&queue_after_ms)
    );
    assert!(back_ms.iter().all(|&ms| ms <= 3_000));
    assert!(queue_after_ms.iter().all(|&ms| ms < 100));
}

#[test]
fn the_ladder_steps_down_on_a_slow_link_and_back_up_without_flapping() {
    let link = LinkConfig { rate_schedule: vec![(0, 300), (30 * SECOND, 3_000)], ..LinkConfig::constant(0) };
    let traces = run_seeds("300 kbit/s, 3 Mbit/s from 30 s", link, 60);
    let size = |sample: &Sample| (sample.target.height, sample.target.fps);
    for trace in &traces {
        let changes = |from_s, to_s| {
            let sizes: Vec<_> = trace.between(from_s, to_s).map(size).collect();
            sizes.windows(2).filter(|pair| pair[0] != pair[1]).count()
        };
        let at = |at_s| size(trace.between(at_s - 0.1, at_s).last().expect("sample"));
        assert_eq!(at(30.0), (360, 15));
        assert_eq!(changes(10.0, 30.0), 0, "steady at 300 kbit/s");
        assert_eq!(at(60.0), (720, 30));
        assert_eq!(changes(45.0, 60.0), 0, "steady at 3 Mbit/s");
    }
    let up_at: Vec<u64> = traces
        .iter()
        .map(|trace| trace.between(30.0, 60.0).find(|sample| size(sample) == (720, 30)).expect("up").at_us / 1000)
        .collect();
    println!("360p15 from 10 s to 30 s, no change; 720p30 from {:?} ms, no change after 45 s", range(&up_at));
}

#[test]
fn paced_pictures_keep_the_sound_out_of_the_bottleneck_queue() {
    let link = LinkConfig {
        rate_schedule: vec![(0, 3_000), (12 * SECOND, 500), (24 * SECOND, 3_000)],
        ..LinkConfig::constant(0)
    };
    let worst_sound_queue_ms = |paced: bool| -> Vec<u64> {
        SEEDS
            .map(|seed| {
                let config = CallConfig { seed, paced, ..CallConfig::hd(LinkConfig { seed, ..link.clone() }, 24) };
                simulate(config).max_audio_queue_delay_ms(14.0, 24.0)
            })
            .collect()
    };
    let (paced, unpaced) = (worst_sound_queue_ms(true), worst_sound_queue_ms(false));
    println!(
        "worst queue of the sound from 2 s after the drop to 0.5 Mbit/s: paced {:?} ms, unpaced {:?} ms",
        range(&paced),
        range(&unpaced)
    );
    // Unpaced, a picture's burst holds the sound behind it at the bottleneck.
    assert!(paced.iter().sum::<u64>() < unpaced.iter().sum::<u64>());
    assert!(range(&paced).1 < range(&unpaced).1);
    assert!(paced.iter().all(|&ms| ms <= 40));
}
