//! Replays a call's sound through the jitter buffer, offline: reads a peer's log taken
//! with `RUST_LOG=chat::media::audio::playout=trace` (each packet's arrival and capture
//! time, each frame the speaker asked for) and prints, second by second, the frames the
//! buffer concealed and the delay it played at (50th and 95th percentile, ms).
//!
//! `cargo run --release --example jitter_replay -- PEER.err`
//!
//! Change the buffer and run it again on the same log to see what the change does to that
//! call. Take logs from real devices (`tests/audio.rs`) as well as from the network bench:
//! a real speaker pulls several frames at once, the bench's discarding sink one at a time.

use std::collections::BTreeMap;
use std::io::BufRead;

use chat::media::audio::jitter::{JitterBuffer, Playout};

/// One traced event.
enum Event {
    /// `copy`: the datagram also carried packet `seq - 1` again.
    Arrived {
        seq: u64,
        captured_us: i64,
        now_us: u64,
        copy: bool,
    },
    Wanted {
        now_us: u64,
    },
}

/// The number after ` key=` in a log line.
fn field(line: &str, key: &str) -> Option<i64> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..].split(|c: char| !c.is_ascii_digit() && c != '-').next()?.parse().ok()
}

fn parse(line: &str) -> Option<Event> {
    if line.contains("sound packet arrived") {
        let seq = u64::try_from(field(line, "seq")?).ok()?;
        let now_us = u64::try_from(field(line, "now")?).ok()?;
        let copy = field(line, "copies") == Some(1);
        Some(Event::Arrived { seq, captured_us: field(line, "captured")?, now_us, copy })
    } else if line.contains("sound frame wanted") {
        Some(Event::Wanted { now_us: u64::try_from(field(line, "now")?).ok()? })
    } else {
        None
    }
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: jitter_replay PEER.err"))?;
    let file = std::fs::File::open(&path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let events: Vec<Event> =
        std::io::BufReader::new(file).lines().map_while(Result::ok).filter_map(|l| parse(&l)).collect();
    let Some(start_us) = events
        .iter()
        .map(|e| match *e {
            Event::Arrived { now_us, .. } | Event::Wanted { now_us } => now_us,
        })
        .next()
    else {
        anyhow::bail!("{path} has no playout trace: take it with RUST_LOG=chat::media::audio::playout=trace");
    };
    let mut buffer = JitterBuffer::new();
    // Per second: frames concealed, delays played (ms).
    let mut seconds: BTreeMap<u64, (u32, Vec<i64>)> = BTreeMap::new();
    for event in events {
        match event {
            Event::Arrived { seq, captured_us, now_us, copy } => {
                buffer.insert(seq, captured_us, Vec::new(), now_us);
                if copy {
                    buffer.insert_previous(seq, captured_us, Vec::new(), now_us);
                }
            }
            Event::Wanted { now_us } => {
                let second = seconds.entry(now_us.saturating_sub(start_us) / 1_000_000).or_default();
                match buffer.pop(now_us) {
                    Playout::Packet { capture_us, .. } => second.1.push((now_us as i64 - capture_us) / 1000),
                    Playout::Conceal => second.0 += 1,
                    Playout::Silence => {}
                }
            }
        }
    }
    println!("  s  concealed  p50 ms  p95 ms");
    for (second, (concealed, mut delays)) in seconds {
        delays.sort_unstable();
        let quantile = |q: usize| delays.get(delays.len().saturating_sub(1) * q / 100).copied().unwrap_or(0);
        println!("{second:3}  {concealed:9}  {:6}  {:6}", quantile(50), quantile(95));
    }
    let counters = buffer.counters();
    println!(
        "concealed {}, recovered from copies {}, dropped {}, late {}",
        counters.concealed, counters.recovered, counters.dropped, counters.late
    );
    Ok(())
}
