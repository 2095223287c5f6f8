//! The control stream as it may arrive: the same bytes cut into chunks of any sizes (the
//! first bytes of the input choose them) must give the same messages, and the same error,
//! as the bytes all at once. A chunk boundary is where a cancelled read would resume.
#![no_main]

use chat::net::control_framing::{CHUNK_BYTES, ControlFramer};
use chat::net::wire::{ControlMessage, WireError};
use libfuzzer_sys::fuzz_target;

/// Every message the framer gives for `chunks`, then how it stopped.
fn frame<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<ControlMessage>, Option<WireError>) {
    let mut framer = ControlFramer::new();
    let mut messages = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        loop {
            match framer.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, data)) = data.split_first() else { return };
    let (sizes, stream) = data.split_at(usize::from(cuts).min(data.len()));
    if sizes.is_empty() {
        return;
    }
    let whole = frame(stream.chunks(CHUNK_BYTES));
    let mut rest = stream;
    let mut pieces = Vec::new();
    for &size in sizes.iter().cycle().take(stream.len()) {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(usize::from(size).clamp(1, rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    assert_eq!(frame(pieces.into_iter()), whole);
});
