//! Datagrams from a peer: header checks; then an audio datagram's Opus packet (and the copy
//! of the one before it, if it carries one) through libopus and the jitter buffer, with whatever sequence numbers and capture times the peer
//! claims; a report or a probe result into a rate controller, as in a call, 100 ms apart:
//! whatever the peer reports, the estimate and the send window stay within their bounds;
//! and probe padding into a probe meter.
#![no_main]

use chat::adapt::controller::RateController;
use chat::adapt::pacing::MIN_WINDOW_BYTES;
use chat::adapt::policy::PolicyConfig;
use chat::adapt::probe::ProbeSent;
use chat::adapt::probe_meter::ProbeMeter;
use chat::media::audio::jitter::{JitterBuffer, MAX_BUFFERED};
use chat::media::audio::opus_codec::AudioDecoder;
use chat::media::audio::{FRAME_SAMPLES, FRAME_US};
use chat::net::wire::Datagram;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = AudioDecoder::new().unwrap();
    let mut jitter = JitterBuffer::new();
    let mut frame = [0.0; FRAME_SAMPLES];
    let config = PolicyConfig { ceiling_kbps: 1935, max_width: 1280, max_height: 720, camera_fps: 30 };
    let mut controller = RateController::new(config);
    let mut reported_us = 0u64;
    let mut probes = ProbeMeter::default();
    let mut received_bytes = 0u64;
    // The input is a run of datagrams, each prefixed by a length byte.
    let mut rest = data;
    let mut now = 1_000_000u64;
    while let Some((&len, tail)) = rest.split_first() {
        let Some(bytes) = tail.get(..usize::from(len)) else { return };
        rest = &tail[usize::from(len)..];
        now += FRAME_US;
        received_bytes += bytes.len() as u64;
        let Ok(datagram) = Datagram::decode(bytes) else { continue };
        assert_eq!(datagram.encode(), bytes);
        match datagram {
            Datagram::Audio(audio) => {
                let _ = decoder.decode(audio.payload, &mut frame);
                jitter.insert(audio.seq, audio.capture_us as i64, audio.payload.to_vec(), now);
                if let Some(previous) = audio.previous {
                    let _ = decoder.decode(previous, &mut frame);
                    jitter.insert_previous(audio.seq, audio.capture_us as i64, previous.to_vec(), now);
                }
                assert!(jitter.depth_frames() <= MAX_BUFFERED);
                let _ = jitter.pop(now + FRAME_US / 2);
            }
            Datagram::Report(report) => {
                reported_us += 100_000;
                if let Some(target) = controller.on_report(reported_us, &report) {
                    assert!(target.video_kbps <= config.ceiling_kbps && target.fps <= config.camera_fps);
                    assert!(target.width <= config.max_width && target.height <= config.max_height);
                }
                assert!(controller.send_window_bytes() >= MIN_WINDOW_BYTES);
                // A cluster the controller asks for leaves at once, at 1 Mbit/s for 50 ms.
                if let Some(cluster) = controller.poll_probe(reported_us) {
                    let sent =
                        ProbeSent { id: cluster.id, first: (reported_us, 0), last: (reported_us + 50_000, 6_250) };
                    let _ = controller.on_probe_sent(reported_us + 50_000, sent);
                }
            }
            Datagram::ProbeResult(result) => {
                reported_us += 100_000;
                if let Some(news) = controller.on_probe_result(reported_us, result)
                    && let Some(target) = news.target
                {
                    assert!(target.video_kbps <= config.ceiling_kbps && target.fps <= config.camera_fps);
                }
                assert!(controller.send_window_bytes() >= MIN_WINDOW_BYTES);
            }
            Datagram::Probe(probe) => {
                let _ = probes.on_probe(now, probe.cluster, probe.index, probe.count, received_bytes);
            }
        }
    }
});
