//! Video sources and the capture thread: camera, test pattern or Y4M file, paced at the
//! frame rate, each picture handed on latest-wins to the encoder and the local preview.
//! While the user has the camera switched off (V) nothing is captured, and a camera is
//! closed (its light goes out) until it is switched on again.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::camera::CameraSource;
use super::camera_buffer::{BufferError, buffer_to_i420};
use super::camera_file::{CameraFile, CameraFileError};
use super::frame::{SharedFrame, VideoFrame};
use super::pattern::pattern_frame;
use super::scale::scale_i420;
use super::y4m::{Y4mError, Y4mReader};
use crate::cli::SourceSpec;
use crate::latest::Latest;
use crate::net::clock::now_us;
use crate::view::MediaState;

/// A source could not start or stopped working.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No camera is connected (or none the platform lets us see).
    #[error("no camera found; use --source test for the test pattern, or --source FILE.y4m")]
    NoCamera,
    /// The camera failed to open or to deliver a picture.
    #[error("camera: {0}; try --source test")]
    Camera(String),
    /// The Y4M file could not be used.
    #[error(transparent)]
    Y4m(#[from] Y4mError),
    /// The camera-like file could not be used.
    #[error(transparent)]
    CameraFile(#[from] CameraFileError),
    /// A camera-like file's picture did not convert.
    #[error("{0}")]
    Buffer(#[from] BufferError),
}

/// An opened source.
enum Source {
    Camera(Box<CameraSource>),
    Pattern { index: u32, width: usize, height: usize },
    File(Y4mReader),
    CameraFile(CameraFile),
}

impl Source {
    fn open(spec: &SourceSpec, width: usize, height: usize, fps: u32) -> Result<Self, SourceError> {
        match spec {
            SourceSpec::Test => Ok(Self::Pattern { index: 0, width, height }),
            SourceSpec::Camera(index) => Ok(Self::Camera(Box::new(CameraSource::open(*index, width, height, fps)?))),
            SourceSpec::Auto => match CameraSource::open(None, width, height, fps) {
                Ok(camera) => Ok(Self::Camera(Box::new(camera))),
                Err(e) => {
                    eprintln!("chat: no usable camera ({e}); sending the test pattern instead");
                    Ok(Self::Pattern { index: 0, width, height })
                }
            },
            SourceSpec::Y4m(path) => Ok(Self::File(Y4mReader::open(path)?)),
            SourceSpec::CameraFile(path, layout) => {
                Ok(Self::CameraFile(CameraFile::open(path, *layout, (width, height))?))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Camera(camera) => camera.describe().to_string(),
            Self::Pattern { width, height, .. } => format!("test pattern {width}x{height}"),
            Self::File(reader) => {
                let h = reader.header();
                format!("{}x{} video file", h.width, h.height)
            }
            Self::CameraFile(file) => {
                let (width, height) = file.size();
                format!("{width}x{height} {} camera-like file", file.layout())
            }
        }
    }

    /// The size of the pictures it gives.
    fn size(&self) -> (usize, usize) {
        match self {
            Self::Camera(camera) => camera.size(),
            Self::Pattern { width, height, .. } => (*width, *height),
            Self::File(reader) => (reader.header().width, reader.header().height),
            Self::CameraFile(file) => file.size(),
        }
    }

    /// Cameras pace themselves; the others are paced by the capture loop.
    fn self_paced(&self) -> bool {
        matches!(self, Self::Camera(_))
    }

    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        match self {
            Self::Camera(camera) => camera.next_frame(),
            Self::Pattern { index, width, height } => {
                let frame = pattern_frame(*index, *width, *height, now_us());
                *index = index.wrapping_add(1);
                Ok(frame)
            }
            Self::File(reader) => {
                let mut frame = reader.next_frame()?;
                frame.capture_us = now_us();
                Ok(frame)
            }
            Self::CameraFile(file) => {
                let buffer = file.next_buffer()?;
                let frame = buffer_to_i420(file.layout(), &buffer, file.size(), now_us())?;
                // An MJPEG picture has its own size: keep to the first one's.
                let (width, height) = file.size();
                Ok(if (frame.width, frame.height) == (width, height) {
                    frame
                } else {
                    scale_i420(&frame, width, height)
                })
            }
        }
    }
}

/// The frame rate a source should run at: `--fps`, else a Y4M file's own rate, else 30.
pub fn source_fps(spec: &SourceSpec, fps: Option<u32>) -> u32 {
    if let Some(fps) = fps {
        return fps;
    }
    if let SourceSpec::Y4m(path) = spec
        && let Ok(reader) = Y4mReader::open(Path::new(path))
        && let Some(rate) = reader.header().fps
    {
        return (rate.round() as u32).clamp(1, 60);
    }
    30
}

/// Where captured pictures go.
#[derive(Clone, Debug, Default)]
pub struct CaptureOutputs {
    /// For the encoder of the call in progress (if any).
    pub encoder: Arc<Latest<SharedFrame>>,
    /// For the window's picture-in-picture.
    pub preview: Arc<Latest<SharedFrame>>,
}

/// A running capture thread; stops when dropped.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub description: String,
    /// The size of its pictures (a camera's nearest to the one asked for, a file's own).
    pub size: (usize, usize),
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens the source on its own thread (cameras must stay on the thread that opened them)
/// and starts capturing; returns once the source is open, or its error.
pub fn start_capture(
    spec: SourceSpec,
    (width, height): (usize, usize),
    fps: u32,
    outputs: CaptureOutputs,
    media: tokio::sync::watch::Receiver<MediaState>,
) -> Result<Capture, SourceError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            let source = match Source::open(&spec, width, height, fps) {
                Ok(source) => {
                    let _ = opened_tx.send(Ok((source.describe(), source.size())));
                    source
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let reopen = move || Source::open(&spec, width, height, fps);
            capture_loop(source, reopen, fps, &outputs, &media, &thread_stop);
        })
        .expect("spawning the capture thread");
    let (description, size) =
        opened_rx.recv().unwrap_or_else(|_| Err(SourceError::Camera("capture thread died".into())))?;
    Ok(Capture { stop, thread: Some(thread), description, size })
}

fn capture_loop(
    source: Source,
    reopen: impl Fn() -> Result<Source, SourceError>,
    fps: u32,
    outputs: &CaptureOutputs,
    media: &tokio::sync::watch::Receiver<MediaState>,
    stop: &AtomicBool,
) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let mut next = Instant::now();
    let mut open = Some(source);
    let mut broken = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if media.borrow().camera_off {
            // A camera is closed while switched off; a pattern or file just waits.
            if matches!(open, Some(Source::Camera(_))) {
                open = None;
                tracing::info!("camera closed while switched off");
            }
            std::thread::sleep(Duration::from_millis(50));
            next = Instant::now();
            continue;
        }
        let source = match &mut open {
            Some(source) => source,
            None => match reopen() {
                Ok(source) => open.insert(source),
                Err(e) => {
                    eprintln!("chat: cannot turn the camera back on: {e}");
                    return;
                }
            },
        };
        if !source.self_paced() {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else if now - next > interval * 4 {
                // Fell far behind (machine suspended, debugger): start afresh, no burst.
                next = now;
            }
            next += interval;
        }
        match source.next_frame() {
            Ok(frame) => {
                let frame: SharedFrame = Arc::new(frame);
                outputs.preview.put(Arc::clone(&frame));
                outputs.encoder.put(frame);
            }
            Err(SourceError::Buffer(e)) => {
                // A camera sends a broken MJPEG picture now and then: skip it, say so rarely.
                broken += 1;
                if broken == 1 || broken.is_multiple_of(100) {
                    tracing::warn!("skipped {broken} broken pictures from the video source so far; the last was {e}");
                }
            }
            Err(e) => {
                tracing::error!("video source stopped: {e}");
                eprintln!("chat: video source stopped: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pattern::read_index;

    fn switches(camera_off: bool) -> tokio::sync::watch::Sender<MediaState> {
        tokio::sync::watch::channel(MediaState { muted: false, camera_off }).0
    }

    #[test]
    fn the_pattern_source_counts_up_at_the_frame_rate() {
        let outputs = CaptureOutputs::default();
        let media = switches(false);
        let capture = start_capture(SourceSpec::Test, (320, 240), 50, outputs.clone(), media.subscribe()).unwrap();
        assert!(capture.description.contains("test pattern"));
        let first = outputs.encoder.take_timeout(Duration::from_secs(5)).unwrap();
        let later = outputs.encoder.take_timeout(Duration::from_secs(5)).unwrap();
        assert!(read_index(&later).unwrap() > read_index(&first).unwrap());
        assert!(later.capture_us >= first.capture_us);
        assert!(outputs.preview.try_take().is_some());
    }

    #[test]
    fn nothing_is_captured_while_the_camera_is_switched_off() {
        let outputs = CaptureOutputs::default();
        let media = switches(true);
        let _capture = start_capture(SourceSpec::Test, (320, 240), 50, outputs.clone(), media.subscribe()).unwrap();
        assert!(outputs.preview.take_timeout(Duration::from_millis(300)).is_none(), "captured while off");
        media.send_modify(|m| m.camera_off = false);
        assert!(outputs.preview.take_timeout(Duration::from_secs(5)).is_some(), "nothing once back on");
    }

    #[test]
    fn a_missing_file_is_reported_by_name() {
        let media = switches(false);
        let outputs = CaptureOutputs::default();
        let err =
            start_capture(SourceSpec::Y4m("/nonexistent/clip.y4m".into()), (320, 240), 30, outputs, media.subscribe())
                .err()
                .unwrap();
        assert!(err.to_string().contains("/nonexistent/clip.y4m"), "{err}");
    }
}
