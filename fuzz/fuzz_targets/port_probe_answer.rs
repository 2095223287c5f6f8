//! Datagrams that come back to a caller's port probe: only a Version Negotiation packet
//! naming the probe's own connection ID counts, whatever else arrives.
#![no_main]

use chat::net::port_probe::is_version_negotiation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (cid, datagram) = data.split_at(data.len().min(8));
    if is_version_negotiation(datagram, cid) {
        assert!(datagram.len() >= 6 + cid.len() && datagram[0] & 0x80 != 0);
        assert_eq!(&datagram[6..6 + cid.len()], cid);
    }
});
