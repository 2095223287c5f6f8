//! NAT-PMP answers from the router (bounded input from the LAN): any bytes give an answer
//! or a reason, never a panic.
#![no_main]

use chat::net::nat_pmp::{Answer, parse_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_answer(data) {
        Ok(Answer::ExternalAddress(_)) => assert_eq!(data.len(), 12),
        Ok(Answer::Mapped { .. }) => assert_eq!(data.len(), 16),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
