//! Video sources and the capture thread: camera, test pattern or Y4M file, paced at the
//! frame rate, each picture handed on latest-wins to the encoder and the local preview.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::camera::CameraSource;
use super::frame::{SharedFrame, VideoFrame};
use super::pattern::pattern_frame;
use super::y4m::{Y4mError, Y4mReader};
use crate::cli::SourceSpec;
use crate::latest::Latest;
use crate::net::clock::now_us;

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
}

/// An opened source.
enum Source {
    Camera(Box<CameraSource>),
    Pattern { index: u32, width: usize, height: usize },
    File(Y4mReader),
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
) -> Result<Capture, SourceError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            let mut source = match Source::open(&spec, width, height, fps) {
                Ok(source) => {
                    let _ = opened_tx.send(Ok(source.describe()));
                    source
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            capture_loop(&mut source, fps, &outputs, &thread_stop);
        })
        .expect("spawning the capture thread");
    let description = opened_rx.recv().unwrap_or_else(|_| Err(SourceError::Camera("capture thread died".into())))?;
    Ok(Capture { stop, thread: Some(thread), description })
}

fn capture_loop(source: &mut Source, fps: u32, outputs: &CaptureOutputs, stop: &AtomicBool) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
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

    #[test]
    fn the_pattern_source_counts_up_at_the_frame_rate() {
        let outputs = CaptureOutputs::default();
        let capture = start_capture(SourceSpec::Test, (320, 240), 50, outputs.clone()).unwrap();
        assert!(capture.description.contains("test pattern"));
        let first = outputs.encoder.take_timeout(Duration::from_secs(5)).unwrap();
        let later = outputs.encoder.take_timeout(Duration::from_secs(5)).unwrap();
        assert!(read_index(&later).unwrap() > read_index(&first).unwrap());
        assert!(later.capture_us >= first.capture_us);
        assert!(outputs.preview.try_take().is_some());
    }

    #[test]
    fn a_missing_file_is_reported_by_name() {
        let err =
            start_capture(SourceSpec::Y4m("/nonexistent/clip.y4m".into()), (320, 240), 30, CaptureOutputs::default())
                .err()
                .unwrap();
        assert!(err.to_string().contains("/nonexistent/clip.y4m"), "{err}");
    }
}
