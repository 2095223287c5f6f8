//! Audio datagrams from a peer: header checks, then the Opus packet through libopus, then
//! the jitter buffer with whatever sequence numbers and capture times the peer claims.
#![no_main]

use chat::media::audio::jitter::{JitterBuffer, MAX_BUFFERED};
use chat::media::audio::opus_codec::AudioDecoder;
use chat::media::audio::{FRAME_SAMPLES, FRAME_US};
use chat::net::wire::AudioDatagram;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = AudioDecoder::new().unwrap();
    let mut jitter = JitterBuffer::new();
    let mut frame = [0.0; FRAME_SAMPLES];
    // The input is a run of datagrams, each prefixed by a length byte.
    let mut rest = data;
    let mut now = 1_000_000u64;
    while let Some((&len, tail)) = rest.split_first() {
        let Some(bytes) = tail.get(..usize::from(len)) else { return };
        rest = &tail[usize::from(len)..];
        now += FRAME_US;
        let Ok(datagram) = AudioDatagram::decode(bytes) else { continue };
        assert_eq!(datagram.encode(), bytes);
        let _ = decoder.decode(datagram.payload, &mut frame);
        jitter.insert(datagram.seq, datagram.capture_us as i64, datagram.payload.to_vec(), now);
        assert!(jitter.depth_frames() <= MAX_BUFFERED);
        let _ = jitter.pop(now + FRAME_US / 2);
    }
});
