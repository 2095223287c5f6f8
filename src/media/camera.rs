//! Cameras through nokhwa: listing them with their formats, and capturing I420 pictures
//! (YUYV converted directly, MJPEG and others decoded to RGB first).

use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
};

use super::convert::{rgb_to_i420, yuyv_to_i420};
use super::frame::VideoFrame;
use super::source::SourceError;
use crate::net::clock::now_us;

/// A camera and what it can do, for `--list-devices`.
#[derive(Debug, Clone)]
pub struct CameraDescription {
    pub index: String,
    pub name: String,
    /// `WxH@FPS FORMAT` entries; empty if the camera could not be opened to ask.
    pub formats: Vec<String>,
}

/// Every camera the platform reports.
pub fn list_cameras() -> Result<Vec<CameraDescription>, SourceError> {
    let cameras = nokhwa::query(ApiBackend::Auto).map_err(|e| SourceError::Camera(e.to_string()))?;
    Ok(cameras
        .into_iter()
        .map(|info| {
            let formats = Camera::new(
                info.index().clone(),
                RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate),
            )
            .and_then(|mut camera| camera.compatible_camera_formats())
            .map(|formats| {
                formats
                    .iter()
                    .map(|f| format!("{}x{}@{} {}", f.width(), f.height(), f.frame_rate(), f.format()))
                    .collect()
            })
            .unwrap_or_default();
            CameraDescription { index: info.index().to_string(), name: info.human_name(), formats }
        })
        .collect())
}

/// An open camera stream.
pub struct CameraSource {
    camera: Camera,
    description: String,
}

impl CameraSource {
    /// Opens camera `index` (the first if `None`) close to the wanted size and rate.
    pub fn open(index: Option<u32>, width: usize, height: usize, fps: u32) -> Result<Self, SourceError> {
        let cameras = nokhwa::query(ApiBackend::Auto).unwrap_or_default();
        if cameras.is_empty() {
            return Err(SourceError::NoCamera);
        }
        let index = CameraIndex::Index(index.unwrap_or(0));
        let wanted = CameraFormat::new(Resolution::new(width as u32, height as u32), FrameFormat::MJPEG, fps);
        let request = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
        let mut camera =
            Camera::new(index.clone(), request).map_err(|e| SourceError::Camera(format!("camera {index}: {e}")))?;
        camera.open_stream().map_err(|e| SourceError::Camera(format!("camera {index}: {e}")))?;
        let format = camera.camera_format();
        let description = format!(
            "camera {index} ({}) {}x{}@{} {}",
            camera.info().human_name(),
            format.width(),
            format.height(),
            format.frame_rate(),
            format.format()
        );
        Ok(Self { camera, description })
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The picture size the camera agreed to.
    pub fn size(&self) -> (usize, usize) {
        let format = self.camera.camera_format();
        (format.width() as usize, format.height() as usize)
    }

    /// Waits for the camera's next picture.
    pub fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        let buffer = self.camera.frame().map_err(|e| SourceError::Camera(e.to_string()))?;
        let captured = now_us();
        let res = buffer.resolution();
        let (w, h) = (res.width() as usize, res.height() as usize);
        let frame = match buffer.source_frame_format() {
            FrameFormat::YUYV => yuyv_to_i420(buffer.buffer(), w, h, captured),
            _ => {
                let rgb = buffer.decode_image::<RgbFormat>().map_err(|e| SourceError::Camera(e.to_string()))?;
                rgb_to_i420(rgb.as_raw(), w, h, captured)
            }
        };
        frame.ok_or_else(|| SourceError::Camera(format!("camera gave a short {w}x{h} picture")))
    }
}
