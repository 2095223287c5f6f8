//! The video writer's groups, sans IO: which stream each encoded picture goes on and the
//! number it gets, when a group is given up, and how long a picture may wait for the send
//! window. The writer (`net::video_out`) opens, writes and resets the streams it is told to.
//!
//! A group is a keyframe and the P pictures after it, on one QUIC stream. A group is given
//! up (its stream reset, so quinn stops sending what went stale in it) when the link comes
//! back after an outage, or when a P picture stalls behind a full send window; the next
//! picture must then be a keyframe. A P picture with no group to belong to is not sent and
//! gets no number: the receiver counts gaps in the numbers as pictures lost on the way.

use super::pacing::{STALL_RESTART_EVERY_US, STALL_US};

/// Where a picture goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A keyframe: finish the current stream (if any) and open group `group` for it.
    NewGroup { group: u64, seq: u64 },
    /// A P picture, on the current stream.
    Current { seq: u64 },
    /// A P picture with no group: it cannot be decoded, so it is not sent; a keyframe is needed.
    NoGroup,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct VideoGroups {
    open: bool,
    next_group: u64,
    next_seq: u64,
    last_stall_us: Option<u64>,
}

impl VideoGroups {
    /// Where the next encoded picture goes, and its numbers.
    pub fn place(&mut self, keyframe: bool) -> Placement {
        let placement = match (keyframe, self.open) {
            (true, _) => {
                let group = self.next_group;
                self.next_group += 1;
                self.open = true;
                Placement::NewGroup { group, seq: self.next_seq }
            }
            (false, true) => Placement::Current { seq: self.next_seq },
            (false, false) => return Placement::NoGroup,
        };
        self.next_seq += 1;
        placement
    }

    /// Gives the current group up (the link came back, or a picture stalled). Returns
    /// whether one was open, whose stream the writer must reset.
    pub fn give_up(&mut self) -> bool {
        std::mem::take(&mut self.open)
    }

    /// How long the next picture may wait for the send window, from `now_us`, before its
    /// group is given up: never for a keyframe (a new group's first picture is the fresh
    /// start itself), nor within `STALL_RESTART_EVERY_US` of the last time.
    pub fn stall_limit_us(&self, keyframe: bool, now_us: u64) -> Option<u64> {
        let too_soon = self.last_stall_us.is_some_and(|at| now_us.saturating_sub(at) < STALL_RESTART_EVERY_US);
        (!keyframe && !too_soon).then_some(STALL_US)
    }

    /// A picture waited its whole stall limit, to `now_us`: its group is given up.
    /// Returns whether the writer must reset a stream, as `give_up` does.
    pub fn on_stalled(&mut self, now_us: u64) -> bool {
        self.last_stall_us = Some(now_us);
        self.give_up()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_opens_a_group_and_the_p_pictures_after_it_follow_on_it() {
        let mut groups = VideoGroups::default();
        assert_eq!(groups.place(true), Placement::NewGroup { group: 0, seq: 0 });
        assert_eq!(groups.place(false), Placement::Current { seq: 1 });
        assert_eq!(groups.place(false), Placement::Current { seq: 2 });
        assert_eq!(groups.place(true), Placement::NewGroup { group: 1, seq: 3 });
        assert_eq!(groups.place(false), Placement::Current { seq: 4 });
    }

    #[test]
    fn after_giving_up_p_pictures_are_not_sent_nor_numbered_until_a_keyframe() {
        let mut groups = VideoGroups::default();
        assert_eq!(groups.place(false), Placement::NoGroup, "nothing before the first keyframe");
        groups.place(true);
        groups.place(false);
        assert!(groups.give_up(), "a group was open: its stream is reset");
        assert!(!groups.give_up(), "nothing left to reset");
        assert_eq!(groups.place(false), Placement::NoGroup);
        assert_eq!(groups.place(false), Placement::NoGroup);
        // No gap in the numbers: the receiver counts none of the unsent pictures as lost.
        assert_eq!(groups.place(true), Placement::NewGroup { group: 1, seq: 2 });
    }

    #[test]
    fn a_stalled_p_picture_gives_its_group_up_but_not_a_keyframe_nor_twice_in_five_seconds() {
        let mut groups = VideoGroups::default();
        assert_eq!(groups.stall_limit_us(false, 0), Some(STALL_US));
        assert_eq!(groups.stall_limit_us(true, 0), None);
        groups.place(true);
        assert!(groups.on_stalled(1_000_000));
        assert_eq!(groups.stall_limit_us(false, 1_000_000 + STALL_RESTART_EVERY_US - 1), None);
        assert_eq!(groups.stall_limit_us(false, 1_000_000 + STALL_RESTART_EVERY_US), Some(STALL_US));
    }
}
