//! Control messages cut out of the control stream however its bytes arrive: chunks go in
//! as they come, whole messages come out. The framer owns a message that has only partly
//! arrived, so a read that is cancelled between two chunks (a `select!` branch losing the
//! race to a timer) loses nothing and the stream never falls out of step. Sans IO.

use super::wire::{ControlMessage, MAX_CONTROL_BYTES, WireError};

/// Size of a control message's length prefix.
const LENGTH_BYTES: usize = 2;
/// The most a reader should hand to `push` at once: one whole message, prefix included.
/// With every complete message taken out after each push, the buffer never holds more
/// than twice this.
pub const CHUNK_BYTES: usize = LENGTH_BYTES + MAX_CONTROL_BYTES;

/// Bytes of the control stream not yet taken out as messages.
#[derive(Debug, Default)]
pub struct ControlFramer {
    buffered: Vec<u8>,
}

impl ControlFramer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes as they arrived (at most `CHUNK_BYTES` at a time).
    pub fn push(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len() <= CHUNK_BYTES, "push at most CHUNK_BYTES at a time");
        self.buffered.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived. A length prefix above the limit is an
    /// error as soon as its two bytes are in, before its body is waited for.
    pub fn next_message(&mut self) -> Result<Option<ControlMessage>, WireError> {
        let Some(prefix) = self.buffered.first_chunk::<LENGTH_BYTES>() else { return Ok(None) };
        let len = ControlMessage::check_length(u16::from_be_bytes(*prefix))?;
        let Some(body) = self.buffered.get(LENGTH_BYTES..LENGTH_BYTES + len) else { return Ok(None) };
        let message = ControlMessage::decode(body)?;
        self.buffered.drain(..LENGTH_BYTES + len);
        Ok(Some(message))
    }

    /// Whether part of a message is waiting for the rest.
    pub fn is_mid_message(&self) -> bool {
        !self.buffered.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(messages: &[ControlMessage]) -> Vec<u8> {
        messages.iter().flat_map(ControlMessage::encode).collect()
    }

    fn sample() -> Vec<ControlMessage> {
        vec![
            ControlMessage::Hello { width: 1280, height: 720, fps: 30 },
            ControlMessage::Ping { sent_us: 42 },
            ControlMessage::KeyframeRequest,
            ControlMessage::Pong { ping_sent_us: 1, received_us: 2, sent_us: 3 },
            ControlMessage::MediaState { muted: true, camera_off: false },
            ControlMessage::HangUp,
        ]
    }

    fn drain(framer: &mut ControlFramer, out: &mut Vec<ControlMessage>) {
        while let Some(message) = framer.next_message().unwrap() {
            out.push(message);
        }
    }

    #[test]
    fn messages_split_at_every_byte_boundary_come_out_whole_and_in_order() {
        let bytes = wire(&sample());
        for cut in 0..=bytes.len() {
            let mut framer = ControlFramer::new();
            let mut out = Vec::new();
            framer.push(&bytes[..cut]);
            drain(&mut framer, &mut out);
            framer.push(&bytes[cut..]);
            drain(&mut framer, &mut out);
            assert_eq!(out, sample(), "cut at {cut}");
            assert!(!framer.is_mid_message());
        }
    }

    #[test]
    fn messages_fed_one_byte_at_a_time_come_out_whole() {
        let bytes = wire(&sample());
        let ends: Vec<usize> = sample()
            .iter()
            .scan(0, |end, m| {
                *end += m.encode().len();
                Some(*end)
            })
            .collect();
        let mut framer = ControlFramer::new();
        let mut out = Vec::new();
        for (i, byte) in bytes.iter().enumerate() {
            framer.push(std::slice::from_ref(byte));
            drain(&mut framer, &mut out);
            assert_eq!(framer.is_mid_message(), !ends.contains(&(i + 1)), "after byte {i}");
            assert_eq!(out.len(), ends.iter().filter(|&&end| end <= i + 1).count());
        }
        assert_eq!(out, sample());
    }

    #[test]
    fn an_oversized_length_is_refused_before_its_body_arrives() {
        let mut framer = ControlFramer::new();
        framer.push(&[0xff]);
        assert_eq!(framer.next_message(), Ok(None));
        framer.push(&[0xff]);
        assert!(matches!(framer.next_message(), Err(WireError::TooLarge { len: 65535, .. })));
    }

    #[test]
    fn a_malformed_body_is_an_error() {
        let mut framer = ControlFramer::new();
        framer.push(&[0, 1, 99]);
        assert_eq!(framer.next_message(), Err(WireError::UnknownMessage(99)));
    }
}
