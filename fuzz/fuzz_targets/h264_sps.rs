//! The SPS size check that runs on every access unit a peer sends, before decoding.
#![no_main]

use chat::media::sps::{MAX_LONG_SIDE, MAX_SHORT_SIDE, SpsError, check_access_unit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(SpsError::TooLarge { width, height }) = check_access_unit(data) {
        assert!(width.max(height) > MAX_LONG_SIDE || width.min(height) > MAX_SHORT_SIDE);
    }
});
