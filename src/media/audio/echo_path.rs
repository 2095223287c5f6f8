//! Whether the peer's sound comes back into the microphone at all, so that echo
//! cancelling touches the microphone only when there is an echo to take out.
//!
//! WebRTC's AEC3 assumes an echo path until it has proved there is none. With headphones,
//! or a speaker the microphone cannot hear, it keeps suppressing through its first 6 s of
//! far-end sound, and a person who talks while the other does comes through up to 30 dB
//! quieter (two voices, no echo, `echo::tests`).
//!
//! An echo is the far end's sound again, delayed and scaled. This correlates the two sample
//! streams, cut to 2 kHz, at every delay from -100 to +600 ms, over the last half second.
//! Both streams advance at their devices' own pace: the playout hands over every frame the
//! speaker takes, silence too. So an echo sits at one lag however the two threads' calls
//! interleave. A clear peak means an echo. A far end heard for most of a second with no
//! peak means there is none. Sans IO: each frame is 10 ms of time.

use super::{AudioFrame, FRAME_SAMPLES};

/// 48 kHz to 2 kHz: a voice's strength and a tone's pitch lie below 1 kHz.
const DECIMATION: usize = 24;
const FRAME_DECIMATED: usize = FRAME_SAMPLES / DECIMATION;
const RATE_DECIMATED: i64 = 2000;
/// The delays searched, relative to the far sample the speaker takes as the microphone
/// frame ends. An echo may look a little early when the devices' buffers differ from
/// what the call order suggests, and late by the speaker's and microphone's buffers and
/// the room.
const EARLIEST_LAG: i64 = -RATE_DECIMATED / 10;
const LAGS: usize = (RATE_DECIMATED * 7 / 10) as usize;
/// How much each frame's evidence fades per frame: about a half-second memory.
const FORGET: f32 = 0.98;
/// Frames of far-end sound the correlation needs before it means anything: with less,
/// two independent voices can line up by chance (0.6 after 100 ms).
const MIN_EVIDENCE_FRAMES: u32 = 30;
/// Normalised correlation that counts as an echo. Independent voices and tones stay under
/// 0.15 once the memory is full; an echo alone reaches 1.0, and one 10 dB under a voice
/// talking over it 0.3.
const ECHO_CORRELATION: f32 = 0.25;
/// Far-end loudness (mean square over the memory) below which it tells nothing either way:
/// -50 dBFS.
const FAR_ACTIVE_POWER: f32 = 1e-5;
/// A far end heard this long with no echo in the microphone means there is no echo path.
const ABSENT_AFTER_FRAMES: u32 = 50;
/// Once an echo was found, how long it must go missing before it is taken as gone
/// (headphones plugged in): a voice talking over it hides it for a while.
const GONE_AFTER_FRAMES: u32 = 500;
/// How far the two streams may slip apart (an underrun, a device restarted) before the
/// search starts again around their new alignment.
const REANCHOR_SAMPLES: i64 = RATE_DECIMATED / 20;

/// What is known about the echo path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoPath {
    /// Not enough far-end sound yet to tell.
    Unknown,
    /// The far end comes back into the microphone.
    Present,
    /// The far end has been playing and none of it came back.
    Absent,
}

impl EchoPath {
    pub fn name(self) -> &'static str {
        match self {
            EchoPath::Unknown => "unknown",
            EchoPath::Present => "present",
            EchoPath::Absent => "absent",
        }
    }
}

/// One stream cut to 2 kHz (a box average; both streams alias alike), its DC taken out.
#[derive(Debug, Default)]
struct Decimator {
    previous_in: f32,
    previous_out: f32,
}

impl Decimator {
    fn run(&mut self, frame: &AudioFrame) -> [f32; FRAME_DECIMATED] {
        let mut out = [0.0; FRAME_DECIMATED];
        for (o, chunk) in out.iter_mut().zip(frame.chunks_exact(DECIMATION)) {
            let x = chunk.iter().sum::<f32>() / DECIMATION as f32;
            // A DC blocker (a few Hz), so a microphone's offset does not correlate.
            let y = x - self.previous_in + 0.99 * self.previous_out;
            (self.previous_in, self.previous_out) = (x, y);
            *o = y;
        }
        out
    }
}

/// The far end's recent samples and, per lag, the running correlation with the microphone.
#[derive(Debug)]
pub struct EchoPathDetector {
    /// The far end's most recent samples, oldest first.
    far: Vec<f32>,
    far_decimator: Decimator,
    mic_decimator: Decimator,
    /// Decimated samples seen so far on each side.
    far_count: i64,
    mic_count: i64,
    /// `far_count - mic_count` when the search was (re)started.
    anchor: Option<i64>,
    cross: Vec<f32>,
    far_power: Vec<f32>,
    /// Scratch: running sums of `far`'s squares.
    far_squares: Vec<f64>,
    mic_power: f32,
    evidence_frames: u32,
    frames_without_echo: u32,
    verdict: EchoPath,
}

impl Default for EchoPathDetector {
    fn default() -> Self {
        Self::new()
    }
}

/// Far samples kept: every lag for a whole frame, and room to slip.
const FAR_KEPT: usize = LAGS + FRAME_DECIMATED + 2 * REANCHOR_SAMPLES as usize;

impl EchoPathDetector {
    pub fn new() -> Self {
        Self {
            far: Vec::with_capacity(2 * FAR_KEPT),
            far_decimator: Decimator::default(),
            mic_decimator: Decimator::default(),
            far_count: 0,
            mic_count: 0,
            anchor: None,
            cross: vec![0.0; LAGS],
            far_power: vec![0.0; LAGS],
            far_squares: Vec::with_capacity(2 * FAR_KEPT + 1),
            mic_power: 0.0,
            evidence_frames: 0,
            frames_without_echo: 0,
            verdict: EchoPath::Unknown,
        }
    }

    /// What is known, as of the last microphone frame.
    pub fn verdict(&self) -> EchoPath {
        self.verdict
    }

    /// A frame the speaker is about to play (silence included).
    pub fn far_end(&mut self, frame: &AudioFrame) {
        self.far.extend(self.far_decimator.run(frame));
        self.far_count += FRAME_DECIMATED as i64;
        if self.far.len() >= 2 * FAR_KEPT {
            self.far.drain(..self.far.len() - FAR_KEPT);
        }
    }

    /// A microphone frame, just captured; returns what is now known.
    pub fn near_end(&mut self, frame: &AudioFrame) -> EchoPath {
        let mic = self.mic_decimator.run(frame);
        self.mic_count += FRAME_DECIMATED as i64;
        let alignment = self.far_count - self.mic_count;
        let anchor = match self.anchor {
            Some(anchor) if (anchor - alignment).abs() <= REANCHOR_SAMPLES => anchor,
            _ => self.restart(alignment),
        };
        for value in self.cross.iter_mut().chain(self.far_power.iter_mut()) {
            *value *= FORGET;
        }
        self.mic_power = self.mic_power * FORGET + mic.iter().map(|m| m * m).sum::<f32>();
        // The far sample at lag 0 for the frame's first microphone sample; each lag is one
        // sample older.
        let far_start = self.far_count - self.far.len() as i64;
        let lag0_first = self.mic_count - FRAME_DECIMATED as i64 + anchor - EARLIEST_LAG - far_start;
        // Running sums of the far end's squares, so each lag's power is one subtraction.
        self.far_squares.clear();
        self.far_squares.push(0.0);
        let mut total = 0.0;
        for &f in &self.far {
            total += f64::from(f * f);
            self.far_squares.push(total);
        }
        for (lag, (cross, power)) in self.cross.iter_mut().zip(&mut self.far_power).enumerate() {
            let first = lag0_first - lag as i64;
            if first < 0 || first as usize + FRAME_DECIMATED > self.far.len() {
                continue;
            }
            let first = first as usize;
            let far = &self.far[first..first + FRAME_DECIMATED];
            *cross += mic.iter().zip(far).map(|(m, f)| m * f).sum::<f32>();
            *power += (self.far_squares[first + FRAME_DECIMATED] - self.far_squares[first]) as f32;
        }
        self.decide()
    }

    fn restart(&mut self, alignment: i64) -> i64 {
        tracing::trace!(alignment, was = ?self.anchor, "echo path search restarts");
        self.cross.fill(0.0);
        self.far_power.fill(0.0);
        self.mic_power = 0.0;
        self.evidence_frames = 0;
        self.anchor = Some(alignment);
        alignment
    }

    /// The strongest normalised correlation at any lag, and that lag in samples.
    fn best_correlation(&self) -> (f32, usize) {
        self.cross
            .iter()
            .zip(&self.far_power)
            .map(|(&cross, &far)| {
                let scale = (far * self.mic_power).sqrt();
                if scale > 0.0 { (cross / scale).abs() } else { 0.0 }
            })
            .enumerate()
            .fold((0.0, 0), |best, (lag, c)| if c > best.0 { (c, lag) } else { best })
    }

    fn decide(&mut self) -> EchoPath {
        let memory = FRAME_DECIMATED as f32 / (1.0 - FORGET);
        let far_active = self.far_power.iter().any(|&p| p / memory >= FAR_ACTIVE_POWER);
        if !far_active {
            return self.verdict;
        }
        self.evidence_frames = self.evidence_frames.saturating_add(1);
        if self.evidence_frames < MIN_EVIDENCE_FRAMES {
            return self.verdict;
        }
        let (correlation, lag) = self.best_correlation();
        // Every 250 ms, what the search sees.
        if self.evidence_frames.is_multiple_of(25) {
            tracing::trace!(
                correlation,
                lag_ms = (lag as i64 + EARLIEST_LAG) * 1000 / RATE_DECIMATED,
                anchor = ?self.anchor,
                frames_without_echo = self.frames_without_echo,
                "echo path search"
            );
        }
        if correlation >= ECHO_CORRELATION {
            self.frames_without_echo = 0;
            self.verdict = EchoPath::Present;
        } else {
            self.frames_without_echo = self.frames_without_echo.saturating_add(1);
            let limit = if self.verdict == EchoPath::Present { GONE_AFTER_FRAMES } else { ABSENT_AFTER_FRAMES };
            if self.frames_without_echo >= limit {
                self.verdict = EchoPath::Absent;
            }
        }
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::SAMPLE_RATE;

    /// A voice-like sound: a buzz at `pitch` rich in harmonics, in syllables `rate` a second.
    fn voice(pitch: f32, rate: f32) -> impl Fn(usize) -> AudioFrame {
        move |n| {
            std::array::from_fn(|i| {
                let t = (n * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
                let syllable = ((t * rate * std::f32::consts::TAU).sin() * 0.5 + 0.5).powi(2);
                let buzz: f32 = (1..12).map(|h| (t * pitch * h as f32 * std::f32::consts::TAU).sin() / h as f32).sum();
                0.2 * syllable * buzz
            })
        }
    }

    fn tone(hz: f32) -> impl Fn(usize) -> AudioFrame {
        move |n| {
            std::array::from_fn(|i| {
                0.25 * ((n * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32 * hz * std::f32::consts::TAU).sin()
            })
        }
    }

    fn silence(_: usize) -> AudioFrame {
        [0.0; FRAME_SAMPLES]
    }

    /// A room: the far end comes back `gain` times as loud, `delay` samples later.
    struct Room {
        gain: f32,
        delay: usize,
    }

    const NO_ECHO: Room = Room { gain: 0.0, delay: 0 };

    /// Runs `frames` frames; the speaker is fed 2 to 6 frames ahead of the microphone,
    /// varying from frame to frame as two real threads do. Returns the verdict after
    /// each frame.
    fn run(far: impl Fn(usize) -> AudioFrame, near: impl Fn(usize) -> AudioFrame, room: Room) -> Vec<EchoPath> {
        let frames = 400;
        let played: Vec<f32> = (0..frames + 8).flat_map(&far).collect();
        let mut detector = EchoPathDetector::new();
        let (mut fed, mut random) = (0, 0x2545_f491_u32);
        (0..frames)
            .map(|n| {
                random ^= random << 13;
                random ^= random >> 17;
                random ^= random << 5;
                while fed < n + 2 + (random % 5) as usize {
                    detector.far_end(played[fed * FRAME_SAMPLES..][..FRAME_SAMPLES].try_into().unwrap());
                    fed += 1;
                }
                let voice = near(n);
                let mic = std::array::from_fn(|i| {
                    let at = n * FRAME_SAMPLES + i;
                    voice[i] + at.checked_sub(room.delay).map_or(0.0, |k| played[k] * room.gain)
                });
                detector.near_end(&mic)
            })
            .collect()
    }

    /// When the verdict first became `what`, in ms.
    fn first(verdicts: &[EchoPath], what: EchoPath) -> Option<usize> {
        verdicts.iter().position(|&v| v == what).map(|n| n * 10)
    }

    #[test]
    fn an_echo_is_found_within_half_a_second_at_any_delay_the_devices_add() {
        for (gain, delay_ms) in [(0.5, 30), (0.05, 200), (1.0, 450)] {
            let verdicts = run(voice(150.0, 4.0), silence, Room { gain, delay: delay_ms * 48 });
            let found = first(&verdicts, EchoPath::Present);
            assert!(found.is_some_and(|ms| ms <= 500), "gain {gain} at {delay_ms} ms: found at {found:?} ms");
            assert_eq!(first(&verdicts, EchoPath::Absent), None, "gain {gain} at {delay_ms} ms");
        }
    }

    #[test]
    fn an_echo_under_a_voice_talking_over_it_is_still_found() {
        let verdicts = run(voice(150.0, 4.0), voice(210.0, 3.3), Room { gain: 0.3, delay: 80 * 48 });
        assert!(first(&verdicts, EchoPath::Present).is_some_and(|ms| ms <= 500), "{verdicts:?}");
        assert_eq!(first(&verdicts, EchoPath::Absent), None);
    }

    #[test]
    fn two_voices_or_two_tones_with_no_echo_path_are_told_apart_within_a_second() {
        for (what, near) in [
            ("another voice", Box::new(voice(210.0, 3.3)) as Box<dyn Fn(usize) -> AudioFrame>),
            ("a tone", Box::new(tone(440.0))),
            ("silence", Box::new(silence)),
        ] {
            let verdicts = run(voice(150.0, 4.0), near, NO_ECHO);
            assert_eq!(first(&verdicts, EchoPath::Present), None, "{what}");
            assert!(first(&verdicts, EchoPath::Absent).is_some_and(|ms| ms <= 1000), "{what}: {verdicts:?}");
        }
        let verdicts = run(tone(660.0), tone(440.0), NO_ECHO);
        assert_eq!(first(&verdicts, EchoPath::Present), None, "two tones");
        assert!(first(&verdicts, EchoPath::Absent).is_some_and(|ms| ms <= 1000), "two tones");
    }

    #[test]
    fn with_the_far_end_silent_nothing_is_concluded() {
        let verdicts = run(silence, voice(210.0, 3.3), NO_ECHO);
        assert!(verdicts.iter().all(|&v| v == EchoPath::Unknown));
    }
}
