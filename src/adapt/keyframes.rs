//! Why the next picture must be a keyframe, sans IO: the control reader (the peer asked),
//! the video writer (it gave a group up) and the encoder thread (the camera came back, a
//! picture was lost before sending) tell it their reasons with the time, and the encoder
//! takes the one that stands before each picture.
//!
//! A reason of our own always stands: the next picture has nothing to refer to without a
//! keyframe. The peer's request does not stand within `PEER_REQUEST_INTERVAL_US` of the
//! last keyframe we made, which is on its way and mends what the request was about
//! (libwebrtc's `EncoderRtcpFeedback` holds requests to one per 300 ms the same way).
//! Without that, a peer asking at every picture would have every picture sent as a
//! keyframe, several times the bitrate the link was estimated for; the receiver asks again
//! every 250 ms while its picture stays broken, so an ignored request is not lost.

/// A peer's request this soon after our last keyframe is taken as answered by it.
pub const PEER_REQUEST_INTERVAL_US: u64 = 300_000;

/// Why a keyframe is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The peer's decoder lost its reference and asked.
    PeerAsked,
    /// The camera was switched back on: the peer's picture returns at once.
    CameraOn,
    /// An encoded picture could not be handed to the network, or the encoder failed on one.
    PictureLost,
    /// The writer gave its group up (stale after an outage, or stalled behind a full
    /// window): the next picture starts a new one.
    NewGroup,
}

impl Reason {
    /// For the log: "a keyframe because ...".
    pub fn describe(self) -> &'static str {
        match self {
            Self::PeerAsked => "the peer asked for one",
            Self::CameraOn => "the camera is back on",
            Self::PictureLost => "a picture was lost before sending",
            Self::NewGroup => "a new group starts",
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Keyframes {
    /// The strongest reason waiting (`NewGroup` outranks the rest), if any.
    pending: Option<Reason>,
    last_keyframe_us: Option<u64>,
}

impl Keyframes {
    /// Someone wants the next picture to be a keyframe, at `now_us`. Returns whether the
    /// request stands: `false` for the peer's, answered by a keyframe already on its way.
    pub fn request(&mut self, now_us: u64, reason: Reason) -> bool {
        let answered = self.last_keyframe_us.is_some_and(|at| now_us.saturating_sub(at) < PEER_REQUEST_INTERVAL_US);
        if reason == Reason::PeerAsked && answered {
            return false;
        }
        self.pending = self.pending.max(Some(reason));
        true
    }

    /// Before encoding a picture at `now_us`: why it must be a keyframe, if it must. The
    /// reason is taken: it does not stand for the picture after. The keyframe counts as on
    /// its way from now, so the peer asking again while it is encoded is answered by it.
    pub fn take(&mut self, now_us: u64) -> Option<Reason> {
        let reason = self.pending.take();
        if reason.is_some() {
            self.last_keyframe_us = Some(now_us);
        }
        reason
    }

    /// The encoder made a keyframe at `now_us`, asked for or not (its own interval, a new
    /// size). It answers the peer's request waiting for the next picture, if one is.
    pub fn on_keyframe(&mut self, now_us: u64) {
        self.last_keyframe_us = Some(now_us);
        if self.pending == Some(Reason::PeerAsked) {
            self.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    #[test]
    fn a_reason_stands_until_the_encoder_takes_it_once() {
        let mut keyframes = Keyframes::default();
        assert_eq!(keyframes.take(0), None);
        assert!(keyframes.request(0, Reason::PeerAsked));
        assert_eq!(keyframes.take(0), Some(Reason::PeerAsked));
        assert_eq!(keyframes.take(0), None);
    }

    #[test]
    fn the_strongest_reason_is_the_one_reported() {
        let mut keyframes = Keyframes::default();
        keyframes.request(0, Reason::NewGroup);
        keyframes.request(1, Reason::PeerAsked);
        keyframes.request(2, Reason::CameraOn);
        assert_eq!(keyframes.take(0), Some(Reason::NewGroup));
    }

    #[test]
    fn the_peer_asking_right_after_a_keyframe_is_answered_by_it() {
        let mut keyframes = Keyframes::default();
        keyframes.on_keyframe(1_000 * MS);
        assert!(!keyframes.request(1_000 * MS + 299 * MS, Reason::PeerAsked));
        assert_eq!(keyframes.take(1_299 * MS), None);
        assert!(keyframes.request(1_000 * MS + 300 * MS, Reason::PeerAsked));
        assert_eq!(keyframes.take(1_300 * MS), Some(Reason::PeerAsked));
    }

    #[test]
    fn our_own_reasons_stand_however_recent_the_last_keyframe() {
        let mut keyframes = Keyframes::default();
        for reason in [Reason::CameraOn, Reason::PictureLost, Reason::NewGroup] {
            keyframes.on_keyframe(5 * MS);
            assert!(keyframes.request(6 * MS, reason));
            assert_eq!(keyframes.take(6 * MS), Some(reason));
        }
    }

    #[test]
    fn a_peer_asking_at_every_picture_gets_at_most_one_keyframe_per_interval() {
        let mut keyframes = Keyframes::default();
        let mut made = 0;
        for picture in 0..300u64 {
            let now = picture * 33 * MS;
            let _ = keyframes.request(now, Reason::PeerAsked);
            if keyframes.take(now).is_some() {
                keyframes.on_keyframe(now);
                made += 1;
            }
        }
        // One every 10 pictures (330 ms) over 300 pictures, instead of 300.
        assert_eq!(made, 30);
    }

    #[test]
    fn the_peer_asking_while_a_keyframe_is_encoded_is_answered_by_it() {
        let mut keyframes = Keyframes::default();
        keyframes.request(1_000 * MS, Reason::PeerAsked);
        assert_eq!(keyframes.take(1_000 * MS), Some(Reason::PeerAsked));
        assert!(!keyframes.request(1_004 * MS, Reason::PeerAsked), "asked while the encoder works on it");
        keyframes.on_keyframe(1_008 * MS);
        assert_eq!(keyframes.take(1_033 * MS), None);
    }

    #[test]
    fn a_keyframe_the_encoder_made_of_itself_answers_the_peers_waiting_request() {
        let mut keyframes = Keyframes::default();
        keyframes.request(1_000 * MS, Reason::PeerAsked);
        keyframes.on_keyframe(1_001 * MS);
        assert_eq!(keyframes.take(1_033 * MS), None);
        keyframes.request(1_002 * MS, Reason::NewGroup);
        keyframes.on_keyframe(1_003 * MS);
        assert_eq!(keyframes.take(1_033 * MS), Some(Reason::NewGroup), "our own reasons still stand");
    }
}
