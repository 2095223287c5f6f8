//! Control stream bytes from a peer: length prefix, then a message body. Whatever decodes
//! re-encodes to the same bytes.
#![no_main]

use chat::net::wire::ControlMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= 2 {
        let Ok(len) = ControlMessage::check_length(u16::from_be_bytes([rest[0], rest[1]])) else { return };
        let Some(body) = rest.get(2..2 + len) else { return };
        if let Ok(message) = ControlMessage::decode(body) {
            assert_eq!(&message.encode()[2..], body);
        }
        rest = &rest[2 + len..];
    }
});
