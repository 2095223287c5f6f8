//! Whom to talk to: the decision, from the presented fingerprint, the known-peers file and
//! the options (`--peer`, `--accept-new`, a terminal to ask on). Pure, so every case is
//! tested without a network.

use super::identity::Fingerprint;
use super::known_peers::{KnownPeer, KnownPeers};

/// This run's trust options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// `--peer`: the only identity accepted.
    pub pinned: Option<Fingerprint>,
    /// `--accept-new`: remember new peers without asking.
    pub accept_new: bool,
    /// A person is at a terminal to ask.
    pub interactive: bool,
}

/// What to do with a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Known, or pinned: go ahead.
    Known(String),
    /// A known identity answering at an address it was not known at (a dynamic home IP, a
    /// new port): go ahead, and move its entry to the new address.
    Moved(KnownPeer),
    /// New, and new peers are accepted: go ahead and remember it once the call is up.
    New,
    /// New: ask the person at the terminal.
    Ask,
    /// Do not talk to it.
    Refuse(Refusal),
}

/// Why a peer is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It is not the identity `--peer` asked for.
    NotPinned { pinned: Fingerprint, presented: Fingerprint },
    /// We know another identity at this address.
    Changed { known: KnownPeer, presented: Fingerprint },
    /// Unknown, and nobody may accept it.
    Unknown { presented: Fingerprint },
}

impl Refusal {
    /// The loud explanation, with what to do.
    pub fn explain(&self, who: &str, known_peers_path: &std::path::Path) -> String {
        match self {
            Self::NotPinned { pinned, presented } => format!(
                "{who} is not the peer you asked for: REFUSED.\n  --peer:    {pinned}\n  presented: {presented}\n\
                 Someone may be in between; check the fingerprint with the peer (chat --fingerprint)."
            ),
            Self::Changed { known, presented } => format!(
                "{who} presented a different identity than before: REFUSED.\n  known:     {}\n  presented: {presented}\n\
                 Someone may be impersonating the peer. If the peer really made a new identity, delete line {} of {} and call again.",
                known.fingerprint,
                known.line,
                known_peers_path.display()
            ),
            Self::Unknown { presented } => format!(
                "{who} is not a known peer (fingerprint {presented}): refused. Accept it with --accept-new, \
                 pin it with --peer {}, or run on a terminal to be asked.",
                presented.to_hex()
            ),
        }
    }
}

impl TrustPolicy {
    /// The listener we called at `address` presented `presented`. Peers are known by their
    /// fingerprint, with the address as a hint: a known identity at a new address is the same
    /// peer, but another identity at a known address is refused.
    pub fn judge_listener(&self, known: &KnownPeers, address: &str, presented: Fingerprint) -> Verdict {
        if let Some(verdict) = self.judge_pin(presented, address) {
            return verdict;
        }
        match known.by_address(address) {
            Some(peer) if peer.fingerprint == presented => Verdict::Known(peer.label().to_string()),
            Some(peer) => Verdict::Refuse(Refusal::Changed { known: peer.clone(), presented }),
            None => match known.by_fingerprint(&presented) {
                Some(peer) => Verdict::Moved(peer.clone()),
                None => self.new_peer(presented),
            },
        }
    }

    /// A caller presented `presented`.
    pub fn judge_caller(&self, known: &KnownPeers, presented: Fingerprint) -> Verdict {
        if let Some(verdict) = self.judge_pin(presented, "the pinned peer") {
            return verdict;
        }
        match known.by_fingerprint(&presented) {
            Some(peer) => Verdict::Known(peer.label().to_string()),
            None => self.new_peer(presented),
        }
    }

    /// The fingerprint a caller should insist on during the handshake, if any: nothing is
    /// sent to a listener that fails this check.
    pub fn expected_listener(&self, known: &KnownPeers, address: &str) -> Option<Fingerprint> {
        self.pinned.or_else(|| known.by_address(address).map(|p| p.fingerprint))
    }

    fn judge_pin(&self, presented: Fingerprint, label: &str) -> Option<Verdict> {
        let pinned = self.pinned?;
        Some(if pinned == presented {
            Verdict::Known(label.to_string())
        } else {
            Verdict::Refuse(Refusal::NotPinned { pinned, presented })
        })
    }

    fn new_peer(&self, presented: Fingerprint) -> Verdict {
        if self.accept_new {
            Verdict::New
        } else if self.interactive {
            Verdict::Ask
        } else {
            Verdict::Refuse(Refusal::Unknown { presented })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::known_peers::ANY_ADDRESS;

    fn known_with(entries: &[(&str, u8)]) -> (tempfile::TempDir, KnownPeers) {
        let dir = tempfile::tempdir().unwrap();
        let mut known = KnownPeers::load(dir.path()).unwrap();
        for (address, byte) in entries {
            known.remember(address, Fingerprint([*byte; 32]), None).unwrap();
        }
        (dir, known)
    }

    #[test]
    fn listeners_are_checked_against_the_identity_known_at_their_address() {
        let (_dir, known) = known_with(&[("a:1", 1)]);
        let policy = TrustPolicy::default();
        assert_eq!(policy.judge_listener(&known, "a:1", Fingerprint([1; 32])), Verdict::Known("a:1".into()));
        assert!(matches!(
            policy.judge_listener(&known, "a:1", Fingerprint([2; 32])),
            Verdict::Refuse(Refusal::Changed { .. })
        ));
        assert!(matches!(
            policy.judge_listener(&known, "b:1", Fingerprint([3; 32])),
            Verdict::Refuse(Refusal::Unknown { .. })
        ));
        assert_eq!(policy.expected_listener(&known, "a:1"), Some(Fingerprint([1; 32])));
        assert_eq!(policy.expected_listener(&known, "b:1"), None);
    }

    #[test]
    fn a_known_identity_at_a_new_address_has_moved_but_a_new_identity_at_a_known_address_is_refused() {
        let (_dir, known) = known_with(&[("a:1", 1), (ANY_ADDRESS, 2)]);
        let policy = TrustPolicy::default();
        let Verdict::Moved(peer) = policy.judge_listener(&known, "b:9", Fingerprint([1; 32])) else { panic!() };
        assert_eq!((peer.address.as_str(), peer.line), ("a:1", 1));
        let Verdict::Moved(peer) = policy.judge_listener(&known, "c:9", Fingerprint([2; 32])) else { panic!() };
        assert_eq!(peer.address, ANY_ADDRESS, "a peer that called us before is known wherever we call it");
        assert!(matches!(
            policy.judge_listener(&known, "a:1", Fingerprint([3; 32])),
            Verdict::Refuse(Refusal::Changed { .. })
        ));
        // A peer both called and calling moves its address line, not its caller line.
        let (_dir, known) = known_with(&[(ANY_ADDRESS, 4), ("d:1", 4)]);
        let Verdict::Moved(peer) = policy.judge_listener(&known, "d:2", Fingerprint([4; 32])) else { panic!() };
        assert_eq!(peer.address, "d:1");
    }

    #[test]
    fn callers_are_known_by_fingerprint() {
        let (_dir, known) = known_with(&[(ANY_ADDRESS, 1), ("b:1", 2)]);
        let policy = TrustPolicy::default();
        assert!(matches!(policy.judge_caller(&known, Fingerprint([1; 32])), Verdict::Known(_)));
        assert!(matches!(policy.judge_caller(&known, Fingerprint([2; 32])), Verdict::Known(_)));
        assert!(matches!(policy.judge_caller(&known, Fingerprint([3; 32])), Verdict::Refuse(Refusal::Unknown { .. })));
    }

    #[test]
    fn new_peers_are_accepted_asked_or_refused_by_the_options() {
        let (_dir, known) = known_with(&[]);
        let new = Fingerprint([9; 32]);
        let accept = TrustPolicy { accept_new: true, ..TrustPolicy::default() };
        assert_eq!(accept.judge_caller(&known, new), Verdict::New);
        let ask = TrustPolicy { interactive: true, ..TrustPolicy::default() };
        assert_eq!(ask.judge_listener(&known, "x:1", new), Verdict::Ask);
    }

    #[test]
    fn a_pin_overrides_everything() {
        let (_dir, known) = known_with(&[("a:1", 1), (ANY_ADDRESS, 2)]);
        let pinned = TrustPolicy { pinned: Some(Fingerprint([3; 32])), accept_new: true, interactive: true };
        assert!(matches!(pinned.judge_listener(&known, "a:1", Fingerprint([3; 32])), Verdict::Known(_)));
        for other in [1, 2, 4] {
            assert!(matches!(
                pinned.judge_caller(&known, Fingerprint([other; 32])),
                Verdict::Refuse(Refusal::NotPinned { .. })
            ));
        }
        assert_eq!(pinned.expected_listener(&known, "a:1"), Some(Fingerprint([3; 32])));
        let text = Refusal::NotPinned { pinned: Fingerprint([3; 32]), presented: Fingerprint([4; 32]) }
            .explain("x:1", std::path::Path::new("kp"));
        assert!(text.contains("REFUSED") && text.contains("0303 0303") && text.contains("0404 0404"), "{text}");
    }
}
