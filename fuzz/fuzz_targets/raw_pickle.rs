//! Pickles from a raw-mode peer: refused or read, never a crash, and a picture read is
//! always consistent with its size.
#![no_main]

use chat::net::raw::pickle_read::{PictureLimits, read_picture};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = PictureLimits { max_width: 512, max_height: 512 };
    if let Ok(picture) = read_picture(data, limits) {
        assert_eq!(picture.bgr.len(), picture.width * picture.height * 3);
        assert!(picture.width <= 512 && picture.height <= 512);
    }
});
