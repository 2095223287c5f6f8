//! Cameras through nokhwa: listing them with their formats, opening the format cheapest to
//! convert at the wanted size and rate (`camera_format`), and turning each buffer into I420
//! (`camera_buffer`: MJPEG decoded straight to YUV, YUYV and NV12 split into planes).

use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
};

use super::camera_buffer::{PixelLayout, buffer_to_i420};
use super::camera_format::{Offered, choose_format};
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
    /// The format chat would open for the size and rate asked for, if any is usable.
    pub chosen: Option<String>,
}

/// Every camera the platform reports, and the format each would be opened in for
/// `wanted` pictures at `fps`.
pub fn list_cameras(wanted: (usize, usize), fps: u32) -> Result<Vec<CameraDescription>, SourceError> {
    let cameras = nokhwa::query(ApiBackend::Auto).map_err(|e| SourceError::Camera(e.to_string()))?;
    Ok(cameras
        .into_iter()
        .map(|info| {
            let offered = Camera::new(info.index().clone(), any_format())
                .and_then(|mut camera| camera.compatible_camera_formats())
                .unwrap_or_default();
            let formats = offered.iter().map(describe_format).collect();
            let chosen = choose(&offered, wanted, fps).map(|f| describe_format(&f));
            CameraDescription { index: info.index().to_string(), name: info.human_name(), formats, chosen }
        })
        .collect())
}

fn any_format() -> RequestedFormat<'static> {
    RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate)
}

fn describe_format(format: &CameraFormat) -> String {
    format!("{}x{}@{} {}", format.width(), format.height(), format.frame_rate(), format.format())
}

fn layout(format: FrameFormat) -> PixelLayout {
    match format {
        FrameFormat::MJPEG => PixelLayout::Mjpeg,
        FrameFormat::YUYV => PixelLayout::Yuyv,
        FrameFormat::NV12 => PixelLayout::Nv12,
        FrameFormat::GRAY => PixelLayout::Grey,
        FrameFormat::RAWRGB => PixelLayout::Rgb,
        FrameFormat::RAWBGR => PixelLayout::Bgr,
    }
}

/// The camera format `camera_format::choose_format` picks among `offered`.
fn choose(offered: &[CameraFormat], wanted: (usize, usize), fps: u32) -> Option<CameraFormat> {
    let offers: Vec<Offered> = offered
        .iter()
        .map(|f| Offered {
            width: f.width() as usize,
            height: f.height() as usize,
            fps: f.frame_rate(),
            layout: layout(f.format()),
        })
        .collect();
    let best = choose_format(&offers, wanted, fps)?;
    offers.iter().position(|o| *o == best).map(|i| offered[i])
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
        let failed = |e: nokhwa::NokhwaError| SourceError::Camera(format!("camera {index}: {e}"));
        let mut camera = Camera::new(index.clone(), any_format()).map_err(failed)?;
        let offered = camera.compatible_camera_formats().unwrap_or_default();
        let request = match choose(&offered, (width, height), fps) {
            Some(format) => RequestedFormatType::Exact(format),
            // The camera would not list its formats: ask for the nearest MJPEG.
            None => RequestedFormatType::Closest(CameraFormat::new(
                Resolution::new(width as u32, height as u32),
                FrameFormat::MJPEG,
                fps,
            )),
        };
        camera.set_camera_requset(RequestedFormat::new::<RgbFormat>(request)).map_err(failed)?;
        camera.open_stream().map_err(failed)?;
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
        Ok(buffer_to_i420(layout(buffer.source_frame_format()), buffer.buffer(), (w, h), captured)?)
    }
}
