//! The header line of a Y4M file given as --source.
#![no_main]

use chat::media::y4m::{MAX_HEIGHT, MAX_WIDTH, parse_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = parse_header(data, std::path::Path::new("fuzz.y4m")) {
        assert!(header.width <= MAX_WIDTH && header.height <= MAX_HEIGHT);
        assert!(header.width % 2 == 0 && header.height % 2 == 0);
    }
});
