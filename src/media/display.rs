//! The window (minifb, on the main thread): the peer's video scaled to fit, this peer's
//! own picture inset in the bottom-right corner, a waiting view before the first remote
//! picture, and the live figures in the title. Esc, Q or closing the window hangs up; M
//! mutes the microphone and V turns the camera off (a crossed-out icon shows either
//! state, for this peer and the other).

use std::time::{Duration, Instant};

use minifb::{Key, KeyRepeat, ScaleMode, Window, WindowOptions};

use super::convert::{Rect, blit_i420};
use super::frame::VideoFrame;
use super::scale::scale_i420_for_window;
use crate::view::View;

const BACKGROUND: u32 = 0x0018_1a1f;
const PIP_BORDER: u32 = 0x00e0_e0e0;
const WAITING_BAR: u32 = 0x004a_90d9;
const ICON: u32 = 0x00b0_b4bc;
const ICON_SLASH: u32 = 0x00e0_4040;
const PLACEHOLDER: u32 = 0x002a_2d35;

/// What the icons say: whose microphone is muted, whose camera is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Switches {
    pub peer_muted: bool,
    pub peer_camera_off: bool,
    pub muted: bool,
    pub camera_off: bool,
}

fn fill_rect(buffer: &mut [u32], width: usize, area: Rect, colour: u32) {
    let height = buffer.len() / width.max(1);
    for y in area.y..(area.y + area.height).min(height) {
        let row = y * width;
        buffer[row + area.x.min(width)..row + (area.x + area.width).min(width)].fill(colour);
    }
}

/// A line from the top-left to the bottom-right corner of `area`, `thickness` pixels wide.
fn slash(buffer: &mut [u32], width: usize, area: Rect, thickness: usize) {
    let steps = area.width.max(area.height).max(1);
    for i in 0..=steps {
        let x = area.x + i * area.width / steps;
        let y = area.y + i * area.height / steps;
        fill_rect(buffer, width, Rect { x, y, width: thickness, height: thickness }, ICON_SLASH);
    }
}

/// A crossed-out camera (a body and a lens) in `area`.
fn camera_off_icon(buffer: &mut [u32], width: usize, area: Rect) {
    let unit = (area.width / 8).max(1);
    let body = area.height.saturating_sub(2 * unit);
    fill_rect(buffer, width, Rect { x: area.x, y: area.y + unit, width: unit * 5, height: body }, ICON);
    for i in 0..unit * 3 {
        // The lens: a wedge that widens to the right.
        let h = body * (i + unit) / (unit * 4);
        let y = area.y + area.height / 2 - h / 2;
        fill_rect(buffer, width, Rect { x: area.x + unit * 5 + i, y, width: 1, height: h }, ICON);
    }
    slash(buffer, width, area, unit.max(2));
}

/// A crossed-out microphone (a capsule on a stand) in `area`.
fn muted_icon(buffer: &mut [u32], width: usize, area: Rect) {
    let unit = (area.width / 6).max(1);
    let cx = area.x + area.width / 2;
    fill_rect(
        buffer,
        width,
        Rect { x: cx.saturating_sub(unit), y: area.y, width: unit * 2, height: area.height * 3 / 5 },
        ICON,
    );
    fill_rect(
        buffer,
        width,
        Rect {
            x: cx.saturating_sub(unit / 2),
            y: area.y + area.height * 3 / 5,
            width: unit.max(1),
            height: area.height / 4,
        },
        ICON,
    );
    fill_rect(
        buffer,
        width,
        Rect {
            x: cx.saturating_sub(unit * 2),
            y: area.y + area.height.saturating_sub(unit),
            width: unit * 4,
            height: unit,
        },
        ICON,
    );
    slash(buffer, width, area, unit.max(2));
}

/// The window could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open a window: {0} (use --headless to run without one)")]
pub struct DisplayError(String);

/// Whether a display server is reachable (X11 or Wayland with XWayland).
pub fn display_available() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
}

/// The window's pixels (0RGB), and each side's picture as last scaled into them: a redraw
/// for a new picture of one side (they come at 30 a second each, not together) does not
/// scale the other's again.
#[derive(Default)]
pub struct Canvas {
    pub pixels: Vec<u32>,
    remote: ScaledPicture,
    local: ScaledPicture,
}

/// Which picture was scaled to which size: the source's address and capture time, its size
/// and the size scaled to.
type ScaleKey = (usize, u64, (usize, usize), (usize, usize));

/// A picture scaled to an area, and which picture and size it was.
#[derive(Default)]
struct ScaledPicture {
    key: Option<ScaleKey>,
    scaled: Option<VideoFrame>,
}

impl ScaledPicture {
    /// `frame` at `area`'s size rounded up to even numbers, scaled once per picture and size.
    fn fit<'a>(&'a mut self, frame: &'a VideoFrame, area: Rect) -> &'a VideoFrame {
        let size = ((area.width + 1) & !1, (area.height + 1) & !1);
        if size == (frame.width, frame.height) {
            return frame;
        }
        let key = (std::ptr::from_ref(frame) as usize, frame.capture_us, (frame.width, frame.height), size);
        if self.key != Some(key) {
            self.scaled = Some(scale_i420_for_window(frame, size.0, size.1));
            self.key = Some(key);
        }
        self.scaled.as_ref().unwrap_or(frame)
    }
}

impl Canvas {
    /// Draws one window picture, `width` x `height`. `phase` animates the waiting view (0..1).
    pub fn compose(
        &mut self,
        (width, height): (usize, usize),
        remote: Option<&VideoFrame>,
        local: Option<&VideoFrame>,
        switches: Switches,
        phase: f64,
    ) {
        self.pixels.resize(width * height, 0);
        let Self { pixels, remote: remote_scaled, local: local_scaled } = self;
        compose(
            pixels,
            width,
            height,
            remote.map(|frame| (frame, remote_scaled)),
            local.map(|frame| (frame, local_scaled)),
            switches,
            phase,
        );
    }
}

/// Draws one window picture into `buffer` (`width` x `height`), each picture scaled through
/// its `ScaledPicture`.
fn compose(
    buffer: &mut [u32],
    width: usize,
    height: usize,
    remote: Option<(&VideoFrame, &mut ScaledPicture)>,
    local: Option<(&VideoFrame, &mut ScaledPicture)>,
    switches: Switches,
    phase: f64,
) {
    buffer.fill(BACKGROUND);
    let whole = Rect { x: 0, y: 0, width, height };
    let icon = (width.min(height) / 5).max(8);
    match remote {
        _ if switches.peer_camera_off && width > icon && height > icon => {
            fill_rect(buffer, width, whole, PLACEHOLDER);
            let area = Rect { x: (width - icon) / 2, y: (height - icon) / 2, width: icon, height: icon * 2 / 3 };
            camera_off_icon(buffer, width, area);
        }
        Some((frame, scaled)) => {
            let area = Rect::fit(frame.width, frame.height, whole);
            blit_i420(scaled.fit(frame, area), buffer, width, area);
        }
        None => {
            // A bar sliding across the middle: the call is not up yet, but the app is alive.
            let bar_w = (width / 6).max(1);
            let span = width.saturating_sub(bar_w);
            let x = (span as f64 * (0.5 - 0.5 * (phase * std::f64::consts::TAU).cos())) as usize;
            let y0 = height / 2;
            for y in y0..(y0 + 6).min(height) {
                buffer[y * width + x..y * width + x + bar_w].fill(WAITING_BAR);
            }
        }
    }
    let margin = (width / 60).max(4);
    let badge = icon / 2;
    if switches.peer_muted && badge + 2 * margin < width.min(height) {
        muted_icon(buffer, width, Rect { x: margin, y: margin, width: badge, height: badge });
    }
    if let Some((frame, scaled)) = local {
        let pip_w = (width / 4).max(8);
        let pip_h = (pip_w * frame.height / frame.width.max(1)).max(2);
        if pip_w + 2 * margin > width || pip_h + 2 * margin > height {
            return;
        }
        let area = Rect { x: width - pip_w - margin, y: height - pip_h - margin, width: pip_w, height: pip_h };
        for y in area.y - 2..area.y + area.height + 2 {
            buffer[y * width + area.x - 2..y * width + area.x + area.width + 2].fill(PIP_BORDER);
        }
        if switches.camera_off {
            fill_rect(buffer, width, area, PLACEHOLDER);
            let small = Rect {
                x: area.x + area.width / 3,
                y: area.y + area.height / 3,
                width: area.width / 3,
                height: area.height / 3,
            };
            camera_off_icon(buffer, width, small);
        } else {
            blit_i420(scaled.fit(frame, area), buffer, width, area);
        }
        if switches.muted && badge < area.width / 2 && badge < area.height {
            let corner =
                Rect { x: area.x + 4, y: area.y + area.height.saturating_sub(badge + 4), width: badge, height: badge };
            muted_icon(buffer, width, corner);
        }
    }
}

/// Runs the window until the user closes it or the peer logic finishes.
pub fn run_window(view: &View, initial: (usize, usize)) -> Result<(), DisplayError> {
    // The pixels are always the window's size: copied as they are, not run through minifb's
    // default stretch (a per-pixel resampling loop even at the same size).
    let options = WindowOptions { resize: true, scale_mode: ScaleMode::UpperLeft, ..WindowOptions::default() };
    let mut window = Window::new("chat", initial.0, initial.1, options).map_err(|e| DisplayError(e.to_string()))?;
    window.set_target_fps(60);
    tracing::info!("window open");
    let started = Instant::now();
    let mut canvas = Canvas::default();
    let (mut remote, mut local): (Option<super::frame::SharedFrame>, _) = (None, None);
    let mut last_title = Instant::now() - Duration::from_secs(1);
    let mut drawn_size = (0, 0);
    let mut drawn_switches = Switches::default();
    while window.is_open() && !view.finished() {
        if window.is_key_pressed(Key::Escape, KeyRepeat::No) || window.is_key_pressed(Key::Q, KeyRepeat::No) {
            break;
        }
        if window.is_key_pressed(Key::M, KeyRepeat::No) {
            view.toggle_mute();
        }
        if window.is_key_pressed(Key::V, KeyRepeat::No) {
            view.toggle_camera();
        }
        let (local_media, peer_media) = (view.local_media(), view.peer_media());
        let switches = Switches {
            peer_muted: peer_media.muted,
            peer_camera_off: peer_media.camera_off,
            muted: local_media.muted,
            camera_off: local_media.camera_off,
        };
        // Redraw only when something changed: a picture costs milliseconds to scale.
        let mut changed = switches != drawn_switches;
        if let Some(frame) = view.remote.try_take() {
            remote = Some(frame);
            changed = true;
        }
        if !view.in_call() && remote.take().is_some() {
            changed = true;
        }
        if let Some(frame) = view.preview.try_take() {
            local = Some(frame);
            changed = true;
        }
        let (width, height) = window.get_size();
        let size = (width.max(1), height.max(1));
        // The waiting view animates.
        changed |= size != drawn_size || remote.is_none();
        if last_title.elapsed() >= Duration::from_millis(500) {
            let mut title = format!("chat - {}", view.headline());
            if local_media.muted {
                title.push_str(" - muted (M)");
            }
            let code = view.safety_code();
            if !code.is_empty() {
                title.push_str(&format!(" - safety code {code}"));
            }
            let figures = view.figures();
            if !figures.is_empty() {
                title.push_str(&format!(" - {figures}"));
            }
            window.set_title(&title);
            last_title = Instant::now();
        }
        if changed {
            let phase = (started.elapsed().as_secs_f64() / 2.0).fract();
            canvas.compose(size, remote.as_deref(), local.as_deref(), switches, phase);
            window.update_with_buffer(&canvas.pixels, size.0, size.1).map_err(|e| DisplayError(e.to_string()))?;
            drawn_size = size;
            drawn_switches = switches;
        } else {
            window.update();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window picture drawn on a fresh canvas.
    fn drawn(
        size: (usize, usize),
        remote: Option<&VideoFrame>,
        local: Option<&VideoFrame>,
        switches: Switches,
        phase: f64,
    ) -> Vec<u32> {
        let mut canvas = Canvas::default();
        canvas.compose(size, remote, local, switches, phase);
        canvas.pixels
    }
    use crate::media::pattern::pattern_frame;

    #[test]
    fn remote_fills_the_window_and_the_inset_sits_bottom_right() {
        let (w, h) = (640, 360);
        let remote = pattern_frame(3, 1280, 720, 0);
        let mut local = VideoFrame::black(320, 180);
        local.y.fill(235);
        let buffer = drawn((w, h), Some(&remote), Some(&local), Switches::default(), 0.0);
        // The remote picture covers the top-left corner (same aspect ratio: no bars).
        assert_ne!(buffer[h / 2 * w + 10], BACKGROUND);
        // The inset is white, inside a border, in the bottom-right quarter.
        let margin = w / 60;
        let inset_centre = (h - margin - 20) * w + (w - margin - 40);
        assert_eq!(buffer[inset_centre] & 0x00ff_ffff, 0x00ff_ffff);
        // The border runs just below the inset's last row.
        assert_eq!(buffer[(h - margin) * w + (w - margin - 40)], PIP_BORDER);
    }

    #[test]
    fn a_remote_picture_that_changes_size_fills_the_same_area() {
        // The peer's encoder scales its pictures down when the network is short: the window
        // keeps showing them at the window's size, and the inset does not move.
        let (w, h) = (640, 360);
        let local = VideoFrame::black(320, 180);
        let pictures: Vec<Vec<u32>> = [(1280, 720), (320, 180), (160, 90)]
            .into_iter()
            .map(|(pw, ph)| {
                let mut remote = VideoFrame::black(pw, ph);
                remote.y.fill(235);
                drawn((w, h), Some(&remote), Some(&local), Switches::default(), 0.0)
            })
            .collect();
        assert!(pictures.iter().all(|buffer| buffer == &pictures[0]));
        assert_eq!(pictures[0][0] & 0x00ff_ffff, 0x00ff_ffff, "the remote picture reaches the corner");
    }

    #[test]
    fn each_new_picture_is_scaled_and_one_unchanged_is_not_scaled_again() {
        let mut canvas = Canvas::default();
        let (mut white, mut black) = (VideoFrame::black(1280, 720), VideoFrame::black(1280, 720));
        (white.capture_us, black.capture_us) = (1, 2);
        white.y.fill(235);
        let local = VideoFrame::black(640, 360);
        let centre = 180 * 640 + 320;
        for (remote, shown) in [(&white, 0x00ff_ffff), (&black, 0), (&white, 0x00ff_ffff)] {
            canvas.compose((640, 360), Some(remote), Some(&local), Switches::default(), 0.0);
            assert_eq!(canvas.pixels[centre] & 0x00ff_ffff, shown);
        }
        // A redraw for the inset alone reuses the remote picture's scaling.
        let before = canvas.remote.scaled.as_ref().map(|f| f.y.as_ptr());
        canvas.compose((640, 360), Some(&white), Some(&VideoFrame::black(320, 180)), Switches::default(), 0.0);
        assert_eq!(canvas.remote.scaled.as_ref().map(|f| f.y.as_ptr()), before);
    }

    #[test]
    fn the_waiting_view_has_no_remote_picture() {
        let (w, h) = (200, 100);
        let buffer = drawn((w, h), None, None, Switches::default(), 0.25);
        assert!(buffer.contains(&WAITING_BAR));
        assert!(buffer.iter().all(|&p| p == BACKGROUND || p == WAITING_BAR));
        // Tiny windows do not panic.
        let all = Switches { peer_muted: true, peer_camera_off: true, muted: true, camera_off: true };
        let tiny = drawn((2, 2), Some(&VideoFrame::black(64, 64)), Some(&VideoFrame::black(64, 64)), all, 0.9);
        assert_eq!(tiny.len(), 4);
        for (w, h) in [(9, 9), (33, 17), (64, 480)] {
            let small = drawn((w, h), None, Some(&VideoFrame::black(64, 64)), all, 0.5);
            assert_eq!(small.len(), w * h);
        }
    }

    #[test]
    fn switched_off_media_show_icons_instead_of_pictures() {
        let (w, h) = (640, 360);
        let remote = pattern_frame(3, 1280, 720, 0);
        let local = VideoFrame::black(320, 180);
        let plain = drawn((w, h), Some(&remote), Some(&local), Switches::default(), 0.0);
        assert!(!plain.contains(&ICON_SLASH));
        // The peer's camera is off: a placeholder, not its last picture.
        let switches = Switches { peer_camera_off: true, ..Switches::default() };
        let off = drawn((w, h), Some(&remote), Some(&local), switches, 0.0);
        assert_eq!(off[10 * w + 10], PLACEHOLDER);
        assert!(off.contains(&ICON_SLASH));
        // The peer is muted: a crossed-out microphone in the top-left corner.
        let muted =
            drawn((w, h), Some(&remote), Some(&local), Switches { peer_muted: true, ..Switches::default() }, 0.0);
        let corner = &muted[..h / 4 * w];
        assert!(corner.iter().enumerate().any(|(i, &p)| p == ICON_SLASH && i % w < w / 4));
    }
}
