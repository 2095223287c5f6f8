//! Encoded pictures from a peer reach openh264's parser: it must neither crash nor hand
//! back a picture whose planes do not match its size.
#![no_main]

use chat::media::codec::VideoDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = VideoDecoder::new().expect("decoder");
    for unit in data.split(|&b| b == 0xFF).take(8) {
        if let Ok(Some(picture)) = decoder.decode(unit, 0) {
            assert_eq!(picture.y.len(), picture.width * picture.height);
            assert_eq!(picture.u.len(), picture.chroma_width() * picture.chroma_height());
        }
    }
});
