//! `View`: what the window shows and how it talks back, shared between the call (on the
//! async runtime) and the window (on the main thread).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::latest::Latest;
use crate::media::frame::SharedFrame;

/// A peer's microphone and camera switches (M and V in the window).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaState {
    pub muted: bool,
    pub camera_off: bool,
}

#[derive(Debug)]
pub struct View {
    /// This peer's own pictures, for the picture-in-picture.
    pub preview: Arc<Latest<SharedFrame>>,
    /// The peer's decoded pictures.
    pub remote: Arc<Latest<SharedFrame>>,
    headline: Mutex<String>,
    figures: Mutex<String>,
    safety_code: Mutex<String>,
    in_call: AtomicBool,
    /// This peer's switches; the call sends every change to the peer.
    local_media: watch::Sender<MediaState>,
    /// The peer's switches, as it last said.
    peer_media: Mutex<MediaState>,
    quit: watch::Sender<bool>,
    finished: AtomicBool,
}

impl View {
    pub fn new(preview: Arc<Latest<SharedFrame>>, local_media: MediaState) -> Self {
        Self {
            preview,
            remote: Arc::new(Latest::new()),
            headline: Mutex::new(String::new()),
            figures: Mutex::new(String::new()),
            safety_code: Mutex::new(String::new()),
            in_call: AtomicBool::new(false),
            local_media: watch::channel(local_media).0,
            peer_media: Mutex::new(MediaState::default()),
            quit: watch::channel(false).0,
            finished: AtomicBool::new(false),
        }
    }

    /// "waiting for a call on …", "calling …", "in a call with …".
    pub fn set_headline(&self, text: impl Into<String>) {
        *self.headline.lock().unwrap_or_else(|e| e.into_inner()) = text.into();
    }

    pub fn headline(&self) -> String {
        self.headline.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The call's safety code, shown until the call ends.
    pub fn set_safety_code(&self, code: &str) {
        *self.safety_code.lock().unwrap_or_else(|e| e.into_inner()) = code.to_string();
    }

    pub fn safety_code(&self) -> String {
        self.safety_code.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The live figures (the status line).
    pub fn set_figures(&self, text: impl Into<String>) {
        *self.figures.lock().unwrap_or_else(|e| e.into_inner()) = text.into();
    }

    pub fn figures(&self) -> String {
        self.figures.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_in_call(&self, in_call: bool) {
        self.in_call.store(in_call, Ordering::Relaxed);
        if !in_call {
            self.remote.try_take();
            self.set_figures("");
            self.set_safety_code("");
            self.set_peer_media(MediaState::default());
        }
    }

    pub fn local_media(&self) -> MediaState {
        *self.local_media.borrow()
    }

    /// Follows this peer's switches.
    pub fn watch_local_media(&self) -> watch::Receiver<MediaState> {
        self.local_media.subscribe()
    }

    /// M: mute or unmute the microphone.
    pub fn toggle_mute(&self) {
        self.local_media.send_modify(|m| m.muted = !m.muted);
    }

    /// V: turn the camera off or on.
    pub fn toggle_camera(&self) {
        self.local_media.send_modify(|m| m.camera_off = !m.camera_off);
    }

    pub fn peer_media(&self) -> MediaState {
        *self.peer_media.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_peer_media(&self, state: MediaState) {
        *self.peer_media.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    pub fn in_call(&self) -> bool {
        self.in_call.load(Ordering::Relaxed)
    }

    /// The user wants out (Esc, Q, window closed, Ctrl-C): hang up and exit.
    pub fn request_quit(&self) {
        self.quit.send_replace(true);
    }

    pub fn quit_requested(&self) -> bool {
        *self.quit.borrow()
    }

    /// Resolves once quitting was requested.
    pub async fn wait_for_quit(&self) {
        let mut quit = self.quit.subscribe();
        let _ = quit.wait_for(|q| *q).await;
    }

    /// The peer logic is done; the window should close.
    pub fn set_finished(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }
}
