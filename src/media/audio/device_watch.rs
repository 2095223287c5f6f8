//! Whether a sound device's stream is still running, judged by how often its callback
//! runs.
//!
//! A stream can stop without a word. Through PulseAudio's ALSA plugin, when a sink was
//! suspended and resumed mid-call, chat's speaker stream stayed open and reported nothing,
//! and its callback never ran again: the peer went silent for the rest of the call. At
//! other times the plugin reports `snd_pcm_avail_delay` I/O errors over and over. An xrun
//! that the stream recovers from is reported too, but there the callback goes on. So the
//! callback's progress decides, not the error reports.
//!
//! A running stream whose callback has not run for 500 ms (fifty of its 10 ms periods) is
//! reopened. 100 ms was too quick: on a PulseAudio null sink a stream that had just started
//! once paused longer than that and played on by itself, and reopening it there cost 2 s of
//! silence (a new stream waits for the sink, below).
//! A fresh stream gets 5 s to prove itself: ten callbacks. A PulseAudio null sink, idle,
//! renders in 2 s blocks, so a stream opened on it may wait up to 2 s to start; 5 s leaves
//! room on a busy machine. While the device cannot play (a suspended sink), a reopen that
//! did not take is tried again every 5 s. Sans IO: the time and the counts are arguments.

/// No callback for this long means a running stream has stopped.
const STALLED_US: u64 = 500_000;
/// How long a stream just (re)opened gets to start. A new stream runs a few callbacks to
/// fill its buffer, then may wait for the device: on an idle PulseAudio null sink, 1.8 s
/// in every call measured.
const RETRY_US: u64 = 5_000_000;
/// Callbacks after which a (re)opened stream counts as running.
const RUNNING_CALLBACKS: u64 = 10;

/// Why a stream is to be reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The callback stopped with no error reported.
    Silently,
    /// The callback stopped after the stream reported errors.
    AfterErrors,
}

impl Stopped {
    /// How the log says it: "the speaker {}; reopening it".
    pub fn verb(self) -> &'static str {
        match self {
            Stopped::Silently => "stopped",
            Stopped::AfterErrors => "failed",
        }
    }
}

/// What the watch tells its stream's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// Reopen the stream. `first` is set for the first time since it last ran, which is the
    /// one to tell the user about.
    Reopen { why: Stopped, first: bool },
    /// A reopened stream is running again.
    Recovered,
}

/// One stream's watch, fed the callback and error counts of its stream and those after it.
#[derive(Debug)]
pub struct DeviceWatch {
    last_callbacks: u64,
    last_errors: u64,
    errors_since_progress: bool,
    /// When the callback last ran, or the stream was last (re)opened.
    progress_us: u64,
    /// Callbacks since the stream was (re)opened.
    callbacks_since_open: u64,
    /// A reopen was asked for and no stream has run since.
    reopening: bool,
}

impl DeviceWatch {
    /// A watch over a stream opened at `now_us`.
    pub fn new(now_us: u64) -> Self {
        Self {
            last_callbacks: 0,
            last_errors: 0,
            errors_since_progress: false,
            progress_us: now_us,
            callbacks_since_open: 0,
            reopening: false,
        }
    }

    /// The counts as of `now_us` (they run on across reopened streams).
    pub fn observe(&mut self, now_us: u64, callbacks: u64, errors: u64) -> Option<DeviceEvent> {
        if errors != self.last_errors {
            self.last_errors = errors;
            self.errors_since_progress = true;
        }
        if callbacks != self.last_callbacks {
            self.callbacks_since_open += callbacks.wrapping_sub(self.last_callbacks);
            self.last_callbacks = callbacks;
            self.progress_us = now_us;
            self.errors_since_progress = false;
            if self.reopening && self.running() {
                self.reopening = false;
                return Some(DeviceEvent::Recovered);
            }
            return None;
        }
        let allowed_us = if self.running() { STALLED_US } else { RETRY_US };
        if now_us.saturating_sub(self.progress_us) < allowed_us {
            return None;
        }
        let why = if self.errors_since_progress { Stopped::AfterErrors } else { Stopped::Silently };
        let first = !self.reopening;
        self.reopening = true;
        // The next stream starts its time now, whether it opens or not.
        self.progress_us = now_us;
        self.callbacks_since_open = 0;
        Some(DeviceEvent::Reopen { why, first })
    }

    fn running(&self) -> bool {
        self.callbacks_since_open >= RUNNING_CALLBACKS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    /// Feeds a callback every 10 ms from `from` up to `to` (ms), counting on from `count`.
    fn run(watch: &mut DeviceWatch, from: u64, to: u64, count: &mut u64) -> Vec<DeviceEvent> {
        (from / 10..to / 10)
            .filter_map(|tick| {
                *count += 1;
                watch.observe(tick * 10 * MS, *count, 0)
            })
            .collect()
    }

    #[test]
    fn a_running_stream_is_left_alone_even_when_it_reports_an_xrun() {
        let mut watch = DeviceWatch::new(0);
        for tick in 1..=100u64 {
            let errors = u64::from(tick >= 50);
            assert_eq!(watch.observe(tick * 10 * MS, tick, errors), None);
        }
    }

    #[test]
    fn a_running_stream_whose_callback_stops_is_reopened_after_half_a_second() {
        let mut watch = DeviceWatch::new(0);
        let mut count = 0;
        assert_eq!(run(&mut watch, 0, 200, &mut count), []);
        // The last callback ran at 190 ms.
        assert_eq!(watch.observe(680 * MS, count, 0), None);
        let reopen = Some(DeviceEvent::Reopen { why: Stopped::Silently, first: true });
        assert_eq!(watch.observe(690 * MS, count, 0), reopen);
    }

    #[test]
    fn errors_then_silence_are_told_apart_from_silence_alone() {
        let mut watch = DeviceWatch::new(0);
        let mut count = 0;
        run(&mut watch, 0, 200, &mut count);
        watch.observe(210 * MS, count, 7);
        let reopen = Some(DeviceEvent::Reopen { why: Stopped::AfterErrors, first: true });
        assert_eq!(watch.observe(690 * MS, count, 9), reopen);
    }

    #[test]
    fn while_the_device_cannot_play_a_reopen_is_tried_every_five_seconds_and_told_once() {
        let mut watch = DeviceWatch::new(0);
        let mut count = 0;
        run(&mut watch, 0, 200, &mut count);
        assert_eq!(
            watch.observe(690 * MS, count, 0),
            Some(DeviceEvent::Reopen { why: Stopped::Silently, first: true })
        );
        // The new stream plays one period and stops again.
        count += 1;
        assert_eq!(watch.observe(700 * MS, count, 0), None);
        assert_eq!(watch.observe(5690 * MS, count, 0), None);
        let again = Some(DeviceEvent::Reopen { why: Stopped::Silently, first: false });
        assert_eq!(watch.observe(5700 * MS, count, 0), again);
        // This one runs: the watch says so once, then a stall is caught in 500 ms again.
        assert_eq!(run(&mut watch, 5710, 6100, &mut count), [DeviceEvent::Recovered]);
        assert_eq!(
            watch.observe(6590 * MS, count, 0),
            Some(DeviceEvent::Reopen { why: Stopped::Silently, first: true })
        );
    }

    #[test]
    fn a_stream_that_never_starts_is_reopened_after_five_seconds() {
        let mut watch = DeviceWatch::new(0);
        // It fills its buffer and waits, as on an idle null sink, for 1.8 s and longer.
        assert_eq!(watch.observe(10 * MS, 3, 0), None);
        assert_eq!(watch.observe(5000 * MS, 3, 0), None);
        assert!(matches!(watch.observe(5010 * MS, 3, 0), Some(DeviceEvent::Reopen { .. })));
    }
}
