//! A raw-mode TCP stream: length-prefixed frames, read from arbitrary bytes in arbitrary
//! chunks; no frame above the limit is ever returned.
#![no_main]

use std::io::Read;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use chat::net::raw::framing::FrameReader;
use chat::net::raw::progress::Progress;
use libfuzzer_sys::fuzz_target;

/// Serves the input a few bytes at a time, as a socket might.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let stop = AtomicBool::new(false);
    let progress = Progress::new(Instant::now());
    let mut reader = FrameReader::new(Trickle(data), 4096, &progress);
    while let Ok(Some(frame)) = reader.next_frame(&stop) {
        assert!(!frame.is_empty() && frame.len() <= 4096);
    }
});
