//! Camera-like files: the buffers a camera would hand over, read from a file and looped, so
//! the camera's whole conversion path runs (and is tested and measured) with no camera. An
//! MJPEG stream (`.mjpeg`, `.mjpg`: JPEG pictures one after another, as `ffmpeg -f mjpeg`
//! writes) or raw YUYV (`.yuyv`: pictures of `--size`, as `ffmpeg -pix_fmt yuyv422 -f
//! rawvideo` writes).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::camera_buffer::PixelLayout;
use super::mjpeg::mjpeg_to_i420;
use super::mjpeg_stream::{MAX_PICTURE_BYTES, StreamError, picture_length};

/// How much is read from the file at a time.
const READ_CHUNK: usize = 256 << 10;

/// A camera-like file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CameraFileError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path} is not an MJPEG stream at byte {offset}: {reason}")]
    Stream { path: PathBuf, offset: u64, reason: StreamError },
    #[error("{path} holds no whole JPEG picture")]
    NoPicture { path: PathBuf },
    #[error("{path}'s first picture does not decode: {reason}")]
    FirstPicture { path: PathBuf, reason: String },
    #[error(
        "{path} is {len} bytes, not a whole number of {width}x{height} YUYV pictures ({picture} bytes each); give the clip's size with --size WxH"
    )]
    YuyvSize { path: PathBuf, len: u64, width: usize, height: usize, picture: usize },
}

/// An open camera-like file.
pub struct CameraFile {
    path: PathBuf,
    file: File,
    layout: PixelLayout,
    size: (usize, usize),
    /// Bytes read but not yet handed out.
    pending: Vec<u8>,
    /// File offset of `pending`'s first byte.
    offset: u64,
    /// Whether a whole picture has come out since the file was last rewound.
    gave_one: bool,
}

impl CameraFile {
    /// Opens an MJPEG stream (its size is its first picture's) or a raw YUYV file of
    /// `yuyv_size` pictures.
    pub fn open(path: &Path, layout: PixelLayout, yuyv_size: (usize, usize)) -> Result<Self, CameraFileError> {
        let io = |error| CameraFileError::Io { path: path.to_path_buf(), error };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut this = Self {
            path: path.to_path_buf(),
            file,
            layout,
            size: yuyv_size,
            pending: Vec::new(),
            offset: 0,
            gave_one: false,
        };
        match layout {
            PixelLayout::Mjpeg => {
                let first = this.next_buffer()?;
                let frame = mjpeg_to_i420(&first, 0)
                    .map_err(|e| CameraFileError::FirstPicture { path: path.to_path_buf(), reason: e.to_string() })?;
                this.size = (frame.width, frame.height);
                this.rewind()?;
            }
            _ => {
                let picture = yuyv_size.0 * yuyv_size.1 * 2;
                if len == 0 || picture == 0 || !len.is_multiple_of(picture as u64) {
                    let (width, height) = yuyv_size;
                    return Err(CameraFileError::YuyvSize { path: this.path, len, width, height, picture });
                }
            }
        }
        Ok(this)
    }

    pub fn layout(&self) -> PixelLayout {
        self.layout
    }

    /// The size of its pictures.
    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// The next picture's bytes, from the start again after the last.
    pub fn next_buffer(&mut self) -> Result<Vec<u8>, CameraFileError> {
        loop {
            let whole = match self.layout {
                PixelLayout::Mjpeg => picture_length(&self.pending).map_err(|reason| CameraFileError::Stream {
                    path: self.path.clone(),
                    offset: self.offset,
                    reason,
                })?,
                _ => Some(self.size.0 * self.size.1 * 2).filter(|&n| self.pending.len() >= n),
            };
            if let Some(n) = whole {
                self.offset += n as u64;
                self.gave_one = true;
                return Ok(self.pending.drain(..n).collect());
            }
            if !self.read_more()? {
                if !self.gave_one {
                    return Err(CameraFileError::NoPicture { path: self.path.clone() });
                }
                if !self.pending.is_empty() {
                    tracing::warn!(
                        "{}: {} bytes at the end are not a whole picture",
                        self.path.display(),
                        self.pending.len()
                    );
                }
                self.rewind()?;
            }
        }
    }

    /// Appends the next chunk of the file to `pending`; `false` at the end of the file.
    fn read_more(&mut self) -> Result<bool, CameraFileError> {
        let have = self.pending.len();
        if have > MAX_PICTURE_BYTES + READ_CHUNK {
            let reason = StreamError::TooLarge;
            return Err(CameraFileError::Stream { path: self.path.clone(), offset: self.offset, reason });
        }
        self.pending.resize(have + READ_CHUNK, 0);
        let read = self.file.read(&mut self.pending[have..]);
        let read = read.map_err(|error| CameraFileError::Io { path: self.path.clone(), error })?;
        self.pending.truncate(have + read);
        Ok(read > 0)
    }

    fn rewind(&mut self) -> Result<(), CameraFileError> {
        self.file.seek(SeekFrom::Start(0)).map_err(|error| CameraFileError::Io { path: self.path.clone(), error })?;
        self.pending.clear();
        self.offset = 0;
        self.gave_one = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::mjpeg::tests::{gradient, jpeg};

    #[test]
    fn an_mjpeg_stream_gives_its_pictures_in_order_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mjpeg");
        let pictures: Vec<Vec<u8>> =
            (0..3).map(|i| jpeg(&gradient(64 + i * 16, 48), 64 + i * 16, 48, Some((2, 1)))).collect();
        std::fs::write(&path, pictures.concat()).unwrap();
        let mut file = CameraFile::open(&path, PixelLayout::Mjpeg, (0, 0)).unwrap();
        assert_eq!(file.size(), (64, 48));
        for round in 0..2 {
            for (i, picture) in pictures.iter().enumerate() {
                assert_eq!(&file.next_buffer().unwrap(), picture, "round {round}, picture {i}");
            }
        }
    }

    #[test]
    fn a_raw_yuyv_file_gives_pictures_of_the_size_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.yuyv");
        let bytes: Vec<u8> = (0..2 * 8 * 4 * 2).map(|i| i as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut file = CameraFile::open(&path, PixelLayout::Yuyv, (8, 4)).unwrap();
        assert_eq!(file.next_buffer().unwrap(), bytes[..64]);
        assert_eq!(file.next_buffer().unwrap(), bytes[64..]);
        assert_eq!(file.next_buffer().unwrap(), bytes[..64]);
        let err = CameraFile::open(&path, PixelLayout::Yuyv, (6, 4)).err().unwrap().to_string();
        assert!(err.contains("--size") && err.contains("clip.yuyv"), "{err}");
    }

    #[test]
    fn files_that_are_not_mjpeg_say_where_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mjpeg");
        std::fs::write(&path, b"RIFF, not a stream of JPEG pictures").unwrap();
        let err = CameraFile::open(&path, PixelLayout::Mjpeg, (0, 0)).err().unwrap().to_string();
        assert!(err.contains("clip.mjpeg") && err.contains("byte 0") && err.contains("FF D8"), "{err}");
        let cut = jpeg(&gradient(64, 48), 64, 48, Some((2, 2)));
        std::fs::write(&path, &cut[..cut.len() / 2]).unwrap();
        let err = CameraFile::open(&path, PixelLayout::Mjpeg, (0, 0)).err().unwrap().to_string();
        assert!(err.contains("no whole JPEG picture"), "{err}");
        let missing = CameraFile::open(&dir.path().join("none.mjpeg"), PixelLayout::Mjpeg, (0, 0)).err().unwrap();
        assert!(missing.to_string().contains("none.mjpeg"), "{missing}");
    }
}
