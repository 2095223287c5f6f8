//! Control stream bytes from a peer: length prefix, then a message body. Receiver reports
//! that decode go on into a rate controller, as in a call, 100 ms apart: whatever the peer
//! reports, the estimate and the send window stay within their bounds.
#![no_main]

use chat::adapt::controller::RateController;
use chat::adapt::pacing::MIN_WINDOW_BYTES;
use chat::adapt::policy::PolicyConfig;
use chat::net::wire::ControlMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = PolicyConfig { ceiling_kbps: 1935, max_width: 1280, max_height: 720, camera_fps: 30 };
    let mut controller = RateController::new(config);
    let mut now_us = 0u64;
    let mut rest = data;
    while rest.len() >= 2 {
        let Ok(len) = ControlMessage::check_length(u16::from_be_bytes([rest[0], rest[1]])) else { return };
        let Some(body) = rest.get(2..2 + len) else { return };
        if let Ok(message) = ControlMessage::decode(body) {
            // Whatever decodes re-encodes to the same bytes.
            assert_eq!(&message.encode()[2..], body);
            if let ControlMessage::ReceiverReport(report) = message {
                now_us += 100_000;
                if let Some(target) = controller.on_report(now_us, &report) {
                    assert!(target.video_kbps <= config.ceiling_kbps && target.fps <= config.camera_fps);
                    assert!(target.width <= config.max_width && target.height <= config.max_height);
                }
                assert!(controller.send_window_bytes() >= MIN_WINDOW_BYTES);
            }
        }
        rest = &rest[2 + len..];
    }
});
