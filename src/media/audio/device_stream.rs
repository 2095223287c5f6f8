//! A device's running stream, released without ever holding up its owner. Dropping a cpal
//! stream joins the thread that serves it, and that thread can be stuck for good inside the
//! sound library: when PulseAudio dies mid-call, libpulse's mainloop waits on a memory
//! block that the ALSA plugin's reader holds while it waits for the mainloop's lock
//! (tests/audio.rs, the sound-server restart). So the stream is dropped on a thread of its
//! own, and its owner waits only `RELEASE_WAIT` for that before carrying on without it.

use std::sync::mpsc;
use std::time::Duration;

/// How long the owner waits for a stream to let go: long enough that the device is free
/// before a fresh stream opens it (a device may take one stream at a time), short enough
/// that a stuck library costs the call nothing it would notice.
const RELEASE_WAIT: Duration = Duration::from_millis(500);

/// A running stream of a device.
pub struct DeviceStream {
    stream: Option<cpal::Stream>,
    /// "microphone" or "speaker", for the log.
    kind: &'static str,
}

impl DeviceStream {
    pub fn new(stream: cpal::Stream, kind: &'static str) -> Self {
        Self { stream: Some(stream), kind }
    }
}

impl Drop for DeviceStream {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else { return };
        let (released, wait) = mpsc::channel();
        let spawned = std::thread::Builder::new().name(format!("{}-release", self.kind)).spawn(move || {
            drop(stream);
            let _ = released.send(());
        });
        if spawned.is_err() {
            tracing::warn!("cannot start a thread to release the {} stream; leaving it", self.kind);
            return;
        }
        if wait.recv_timeout(RELEASE_WAIT).is_err() {
            tracing::warn!(
                "the sound library did not let go of the old {} stream (its sound server went away); carrying on \
                 without it",
                self.kind
            );
        }
    }
}
