//! PCP MAP answers from the router (bounded input from the LAN): any bytes give a mapping
//! for our nonce or a reason, never a panic.
#![no_main]

use chat::net::pcp::{MAX_MESSAGE_BYTES, parse_map_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let nonce: [u8; 12] = std::array::from_fn(|i| data.get(i).copied().unwrap_or(0));
    match parse_map_answer(data, &nonce) {
        Ok(mapped) => {
            assert!(data.len() >= 60 && data.len() <= MAX_MESSAGE_BYTES);
            assert_eq!(mapped.nonce, nonce);
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
