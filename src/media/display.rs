//! The window (minifb, on the main thread): the peer's video scaled to fit, this peer's
//! own picture inset in the bottom-right corner, a waiting view before the first remote
//! picture, and the live figures in the title. Esc, Q or closing the window hangs up.

use std::time::{Duration, Instant};

use minifb::{Key, KeyRepeat, Window, WindowOptions};

use super::convert::{Rect, blit_i420};
use super::frame::VideoFrame;
use crate::view::View;

const BACKGROUND: u32 = 0x0018_1a1f;
const PIP_BORDER: u32 = 0x00e0_e0e0;
const WAITING_BAR: u32 = 0x004a_90d9;

/// The window could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open a window: {0} (use --headless to run without one)")]
pub struct DisplayError(String);

/// Whether a display server is reachable (X11 or Wayland with XWayland).
pub fn display_available() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
}

/// Draws one window picture into `buffer` (`width` x `height`, 0RGB).
/// `phase` animates the waiting view (0..1).
pub fn compose(
    buffer: &mut [u32],
    width: usize,
    height: usize,
    remote: Option<&VideoFrame>,
    local: Option<&VideoFrame>,
    phase: f64,
) {
    buffer.fill(BACKGROUND);
    let whole = Rect { x: 0, y: 0, width, height };
    match remote {
        Some(frame) => blit_i420(frame, buffer, width, Rect::fit(frame.width, frame.height, whole)),
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
    if let Some(frame) = local {
        let margin = (width / 60).max(4);
        let pip_w = (width / 4).max(8);
        let pip_h = (pip_w * frame.height / frame.width.max(1)).max(2);
        if pip_w + 2 * margin > width || pip_h + 2 * margin > height {
            return;
        }
        let area = Rect { x: width - pip_w - margin, y: height - pip_h - margin, width: pip_w, height: pip_h };
        for y in area.y - 2..area.y + area.height + 2 {
            buffer[y * width + area.x - 2..y * width + area.x + area.width + 2].fill(PIP_BORDER);
        }
        blit_i420(frame, buffer, width, area);
    }
}

/// Runs the window until the user closes it or the peer logic finishes.
pub fn run_window(view: &View, initial: (usize, usize)) -> Result<(), DisplayError> {
    let options = WindowOptions { resize: true, ..WindowOptions::default() };
    let mut window = Window::new("chat", initial.0, initial.1, options).map_err(|e| DisplayError(e.to_string()))?;
    window.set_target_fps(60);
    tracing::info!("window open");
    let started = Instant::now();
    let mut buffer = Vec::new();
    let (mut remote, mut local): (Option<super::frame::SharedFrame>, _) = (None, None);
    let mut last_title = Instant::now() - Duration::from_secs(1);
    let mut drawn_size = (0, 0);
    while window.is_open() && !view.finished() {
        if window.is_key_pressed(Key::Escape, KeyRepeat::No) || window.is_key_pressed(Key::Q, KeyRepeat::No) {
            break;
        }
        // Redraw only when something changed: a picture costs milliseconds to scale.
        let mut changed = false;
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
            buffer.resize(size.0 * size.1, 0);
            let phase = (started.elapsed().as_secs_f64() / 2.0).fract();
            compose(&mut buffer, size.0, size.1, remote.as_deref(), local.as_deref(), phase);
            window.update_with_buffer(&buffer, size.0, size.1).map_err(|e| DisplayError(e.to_string()))?;
            drawn_size = size;
        } else {
            window.update();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pattern::pattern_frame;

    #[test]
    fn remote_fills_the_window_and_the_inset_sits_bottom_right() {
        let (w, h) = (640, 360);
        let mut buffer = vec![0; w * h];
        let remote = pattern_frame(3, 1280, 720, 0);
        let mut local = VideoFrame::black(320, 180);
        local.y.fill(235);
        compose(&mut buffer, w, h, Some(&remote), Some(&local), 0.0);
        // The remote picture covers the top-left corner (same aspect ratio: no bars).
        assert_ne!(buffer[h / 2 * w + 10], BACKGROUND);
        // The inset is white, inside a border, in the bottom-right quarter.
        let margin = w / 60;
        let inset_centre = (h - margin - 20) * w + (w - margin - 40);
        assert_eq!(buffer[inset_centre], 0x00ff_ffff);
        // The border runs just below the inset's last row.
        assert_eq!(buffer[(h - margin) * w + (w - margin - 40)], PIP_BORDER);
    }

    #[test]
    fn the_waiting_view_has_no_remote_picture() {
        let (w, h) = (200, 100);
        let mut buffer = vec![0; w * h];
        compose(&mut buffer, w, h, None, None, 0.25);
        assert!(buffer.contains(&WAITING_BAR));
        assert!(buffer.iter().all(|&p| p == BACKGROUND || p == WAITING_BAR));
        // Tiny windows do not panic.
        let mut tiny = vec![0; 4];
        compose(&mut tiny, 2, 2, Some(&VideoFrame::black(64, 64)), Some(&VideoFrame::black(64, 64)), 0.9);
    }
}
