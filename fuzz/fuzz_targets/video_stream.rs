//! A video stream from a peer: preamble, then framed pictures.
#![no_main]

use chat::net::wire::{FRAME_HEADER_BYTES, FrameHeader, MAX_FRAME_BYTES, parse_stream_preamble};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((preamble, mut rest)) = data.split_first_chunk::<9>() else { return };
    if parse_stream_preamble(preamble).is_err() {
        return;
    }
    while let Some((header, after)) = rest.split_first_chunk::<FRAME_HEADER_BYTES>() {
        let Ok(header) = FrameHeader::decode(header) else { return };
        assert!(header.len as usize <= MAX_FRAME_BYTES);
        assert_eq!(FrameHeader::decode(&header.encode()), Ok(header));
        let Some(next) = after.get(header.len as usize..) else { return };
        rest = next;
    }
});
