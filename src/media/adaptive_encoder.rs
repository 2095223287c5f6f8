//! `AdaptiveEncoder`: the encoder thread's encoder, following a `Target` (bitrate, largest
//! picture, frame rate) that may change at any picture. For each captured picture it skips
//! it if the frame rate asks so (`FramePacer`), sets the encoder's bitrate and frame rate
//! (no keyframe), scales the picture down to fit the size (`scale_i420`; a new size starts
//! with an IDR picture), and encodes it. Whoever decides the target (the session's rate
//! control) hands the newest one over; this only obeys it, picture by picture, with the
//! capture time as its clock, so it is tested without threads.

use super::codec::{CodecError, EncodedFrame, EncoderSettings, VideoEncoder};
use super::frame::VideoFrame;
use super::frame_pacer::FramePacer;
use super::scale::scale_i420;

/// The smallest side a picture is scaled to (one macroblock).
const MIN_SIDE: usize = 16;

/// What the encoder should produce. A change of `width` x `height` costs an IDR picture, so
/// it should change rarely and in large steps; bitrate and frame rate changes cost nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Video bitrate in kbit/s (at least 1).
    pub video_kbps: u32,
    /// The largest picture to send: captured pictures are scaled down to fit inside, keeping
    /// their aspect ratio; never up. `usize::MAX`: no limit.
    pub width: usize,
    pub height: usize,
    /// Pictures per second, 1 to 60; above the capture's rate, every picture is sent.
    pub fps: u32,
}

impl From<crate::adapt::policy::Target> for Target {
    /// The policy's size, as the largest box the captured pictures are fitted into.
    fn from(target: crate::adapt::policy::Target) -> Self {
        Self {
            video_kbps: target.video_kbps,
            width: target.width as usize,
            height: target.height as usize,
            fps: target.fps,
        }
    }
}

impl Target {
    /// This target held to `rung`'s size and frame rate, where they are lower.
    pub fn within(self, rung: crate::adapt::ladder::Rung) -> Self {
        Self {
            width: self.width.min(rung.width as usize),
            height: self.height.min(rung.height as usize),
            fps: self.fps.min(rung.fps),
            ..self
        }
    }

    /// This target's size and frame rate as a ladder rung: for a target as applied, the
    /// size and rate sent.
    pub fn rung(&self) -> crate::adapt::ladder::Rung {
        crate::adapt::ladder::Rung { width: self.width as u32, height: self.height as u32, fps: self.fps }
    }

    /// What the call starts with: the settings' bitrate and rate, pictures as captured.
    pub fn initial(settings: EncoderSettings) -> Self {
        Self { video_kbps: settings.bitrate_kbps, width: usize::MAX, height: usize::MAX, fps: settings.fps }
    }

    /// The size a `width` x `height` picture is sent at: scaled down to fit inside the
    /// target keeping its aspect ratio, with even sides of at least `MIN_SIDE` (or the
    /// picture's own, if smaller).
    pub fn fit(&self, width: usize, height: usize) -> (usize, usize) {
        if (width <= self.width && height <= self.height) || width == 0 || height == 0 {
            return (width, height);
        }
        // A product that saturates is above the other side's limit, which then applies.
        let fitted_width = self.width.min(width.saturating_mul(self.height) / height);
        let fitted_height = self.height.min(height.saturating_mul(self.width) / width);
        let side = |fitted: usize, own: usize| (fitted & !1).max(MIN_SIDE).min(own);
        (side(fitted_width, width), side(fitted_height, height))
    }
}

/// A `VideoEncoder` that follows a `Target`.
pub struct AdaptiveEncoder {
    encoder: VideoEncoder,
    pacer: FramePacer,
    /// The target as applied to the last picture handed to the encoder, its size the size sent.
    applied: Option<Target>,
    /// Pictures handed to openh264 that its rate control skipped (to pay back a keyframe or
    /// an expensive picture): the frame rate sent falls below the target's by these.
    rate_control_skips: u64,
}

impl AdaptiveEncoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, CodecError> {
        Ok(Self {
            encoder: VideoEncoder::new(settings)?,
            pacer: FramePacer::new(),
            applied: None,
            rate_control_skips: 0,
        })
    }

    /// Makes the next picture encoded an IDR picture.
    pub fn request_keyframe(&mut self) {
        self.encoder.request_keyframe();
    }

    /// Encodes `frame` as `target` says. `Ok(None)` when the picture is skipped for the frame
    /// rate or rate control dropped it. A bitrate or frame rate openh264 refuses is logged
    /// and the picture encoded at the previous one.
    pub fn encode(&mut self, frame: &VideoFrame, target: Target) -> Result<Option<EncodedFrame>, CodecError> {
        if !self.pacer.keep(frame.capture_us, target.fps) {
            return Ok(None);
        }
        for change in [self.encoder.set_bitrate(target.video_kbps), self.encoder.set_frame_rate(target.fps)] {
            if let Err(e) = change {
                tracing::warn!("{e}");
            }
        }
        let (width, height) = target.fit(frame.width, frame.height);
        let applied = Target { width, height, ..target };
        if self.applied.is_none_or(|last| (last.width, last.height, last.fps) != (width, height, target.fps)) {
            tracing::debug!("sending {width}x{height}@{} ({} kbit/s)", target.fps, target.video_kbps);
        }
        self.applied = Some(applied);
        let encoded = if (width, height) == (frame.width, frame.height) {
            self.encoder.encode(frame)
        } else {
            self.encoder.encode(&scale_i420(frame, width, height))
        };
        if matches!(encoded, Ok(None)) {
            self.rate_control_skips += 1;
        }
        encoded
    }

    /// Pictures openh264's rate control skipped since the start.
    pub fn rate_control_skips(&self) -> u64 {
        self.rate_control_skips
    }

    /// The target as applied to the last picture handed to the encoder (its size: the size
    /// sent), if any.
    pub fn applied(&self) -> Option<Target> {
        self.applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::VideoDecoder;
    use crate::media::pattern::pattern_frame;

    const SETTINGS: EncoderSettings = EncoderSettings { fps: 30, bitrate_kbps: 800, keyframe_interval_secs: 0 };

    #[test]
    fn fit_keeps_the_aspect_ratio_and_never_grows() {
        let target = |width, height| Target { video_kbps: 500, width, height, fps: 30 };
        assert_eq!(target(640, 360).fit(1280, 720), (640, 360));
        assert_eq!(target(640, 480).fit(1280, 720), (640, 360));
        assert_eq!(target(320, 320).fit(1280, 720), (320, 180));
        assert_eq!(target(427, 240).fit(1280, 720), (426, 240));
        assert_eq!(target(1920, 1080).fit(1280, 720), (1280, 720));
        assert_eq!(target(0, 0).fit(1280, 720), (16, 16));
        assert_eq!(target(0, 0).fit(8, 8), (8, 8));
        assert_eq!(target(usize::MAX, 360).fit(1280, 720), (640, 360));
        assert_eq!(Target::initial(SETTINGS).fit(3840, 2160), (3840, 2160));
    }

    /// Feeds two seconds of 30 fps pattern pictures under `target`, starting at `start`;
    /// returns the sizes the decoder saw and how many pictures were keyframes.
    fn run(
        encoder: &mut AdaptiveEncoder,
        decoder: &mut VideoDecoder,
        start: u32,
        target: Target,
    ) -> (Vec<(usize, usize)>, usize) {
        let (mut sizes, mut keyframes) = (Vec::new(), 0);
        for i in start..start + 60 {
            let frame = pattern_frame(i, 640, 360, u64::from(i) * 33_333);
            let Some(packet) = encoder.encode(&frame, target).unwrap() else { continue };
            keyframes += usize::from(packet.keyframe);
            let picture = decoder.decode(&packet.data, packet.capture_us).unwrap().expect("a picture");
            sizes.push((picture.width, picture.height));
        }
        (sizes, keyframes)
    }

    #[test]
    fn frame_rate_and_size_instructions_are_honoured() {
        let mut encoder = AdaptiveEncoder::new(SETTINGS).unwrap();
        let mut decoder = VideoDecoder::new().unwrap();
        let full = Target::initial(SETTINGS);
        let (sizes, keyframes) = run(&mut encoder, &mut decoder, 0, full);
        // Rate control may skip one picture to pay for the first keyframe.
        assert!(sizes.len() >= 59 && sizes.iter().all(|&s| s == (640, 360)), "{} pictures", sizes.len());
        assert_eq!(keyframes, 1);

        // Half the rate: every other picture; same size, so no keyframe.
        let (sizes, keyframes) = run(&mut encoder, &mut decoder, 60, Target { fps: 15, ..full });
        assert!((29..=30).contains(&sizes.len()), "{} pictures at 15 fps", sizes.len());
        assert_eq!(keyframes, 0);
        assert_eq!(encoder.applied(), Some(Target { fps: 15, width: 640, height: 360, ..full }));

        // A smaller size: one keyframe, then every picture at that size.
        let small = Target { width: 320, height: 240, fps: 10, video_kbps: 200 };
        let (sizes, keyframes) = run(&mut encoder, &mut decoder, 120, small);
        assert!((19..=20).contains(&sizes.len()), "{} pictures at 10 fps", sizes.len());
        assert!(sizes.iter().all(|&s| s == (320, 180)), "{sizes:?}");
        assert_eq!(keyframes, 1);
        assert_eq!(encoder.applied(), Some(Target { width: 320, height: 180, ..small }));

        // And back up.
        let (sizes, keyframes) = run(&mut encoder, &mut decoder, 180, full);
        assert!(sizes.len() >= 58 && sizes.iter().all(|&s| s == (640, 360)), "{sizes:?}");
        assert_eq!(keyframes, 1);
    }
}
