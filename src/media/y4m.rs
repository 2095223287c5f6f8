//! YUV4MPEG2 (`.y4m`) files: a looping reader that stands in for a camera, and a writer
//! for `--record`. Only 4:2:0 8-bit files are accepted, and every size is checked
//! before anything is allocated.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::frame::VideoFrame;
use super::scale::scale_i420;

/// The largest picture a Y4M file may declare (8K UHD).
pub const MAX_WIDTH: usize = 7680;
pub const MAX_HEIGHT: usize = 4320;
const MAX_HEADER_BYTES: usize = 1024;

/// What went wrong reading or writing a Y4M file.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// The file could not be opened, read or written.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    /// The first line is not a YUV4MPEG2 header.
    #[error(
        "{path}: not a Y4M file (it must start with \"YUV4MPEG2 \"); convert it with: ffmpeg -i INPUT -pix_fmt yuv420p OUT.y4m"
    )]
    NotY4m { path: PathBuf },
    /// The header is malformed or lacks the picture size.
    #[error("{path}: bad Y4M header: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    /// The file uses a colour space other than 8-bit 4:2:0.
    #[error(
        "{path}: colour space {found} is not supported; only 8-bit 4:2:0 is (ffmpeg -i INPUT -pix_fmt yuv420p OUT.y4m)"
    )]
    UnsupportedColourSpace { path: PathBuf, found: String },
    /// The declared picture is larger than `MAX_WIDTH` x `MAX_HEIGHT` or has odd sides.
    #[error("{path}: picture size {width}x{height} is not supported (even sizes up to {MAX_WIDTH}x{MAX_HEIGHT})")]
    BadSize { path: PathBuf, width: usize, height: usize },
    /// The file holds a header but no complete frame.
    #[error("{path}: no complete frame in the file")]
    NoFrames { path: PathBuf },
    /// A frame marker is missing or malformed.
    #[error("{path}: bad frame marker at byte {offset}")]
    BadFrame { path: PathBuf, offset: u64 },
}

/// Stream properties from a Y4M header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Y4mHeader {
    pub width: usize,
    pub height: usize,
    /// Frames per second, if the header gives a rate.
    pub fps: Option<f64>,
}

/// Parses a Y4M stream header line (without its newline).
pub fn parse_header(line: &[u8], path: &Path) -> Result<Y4mHeader, Y4mError> {
    let bad = |reason: &str| Y4mError::BadHeader { path: path.into(), reason: reason.into() };
    let text = std::str::from_utf8(line).map_err(|_| bad("not ASCII"))?;
    let mut fields = text.split(' ');
    if fields.next() != Some("YUV4MPEG2") {
        return Err(Y4mError::NotY4m { path: path.into() });
    }
    let (mut width, mut height, mut fps) = (None, None, None);
    for field in fields.filter(|f| !f.is_empty()) {
        // Tags are one ASCII letter; a field starting with anything else is skipped.
        let Some((tag, value)) = field.split_at_checked(1) else { continue };
        match tag {
            "W" => width = Some(value.parse::<usize>().map_err(|_| bad("width is not a number"))?),
            "H" => height = Some(value.parse::<usize>().map_err(|_| bad("height is not a number"))?),
            "F" => {
                let (n, d) = value.split_once(':').ok_or_else(|| bad("frame rate is not N:D"))?;
                let n: f64 = n.parse().map_err(|_| bad("frame rate is not N:D"))?;
                let d: f64 = d.parse().map_err(|_| bad("frame rate is not N:D"))?;
                if n > 0.0 && d > 0.0 && n / d <= 1000.0 {
                    fps = Some(n / d);
                }
            }
            "C" if !matches!(value, "420" | "420jpeg" | "420paldv" | "420mpeg2") => {
                return Err(Y4mError::UnsupportedColourSpace { path: path.into(), found: value.into() });
            }
            "I" if !matches!(value, "p" | "?") => return Err(bad("interlaced video is not supported")),
            _ => {}
        }
    }
    let width = width.ok_or_else(|| bad("no W (width) field"))?;
    let height = height.ok_or_else(|| bad("no H (height) field"))?;
    if width == 0 || height == 0 || width > MAX_WIDTH || height > MAX_HEIGHT || width % 2 != 0 || height % 2 != 0 {
        return Err(Y4mError::BadSize { path: path.into(), width, height });
    }
    Ok(Y4mHeader { width, height, fps })
}

/// Reads a line of at most `MAX_HEADER_BYTES`, without the newline.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = reader.take(MAX_HEADER_BYTES as u64 + 1).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long or cut short"));
    }
    line.pop();
    Ok(Some(line))
}

/// A Y4M file read frame by frame, starting over at the end.
pub struct Y4mReader {
    path: PathBuf,
    reader: BufReader<File>,
    header: Y4mHeader,
    first_frame_offset: u64,
}

impl Y4mReader {
    /// Opens `path` and checks its header and first frame.
    pub fn open(path: &Path) -> Result<Self, Y4mError> {
        let io_err = |error| Y4mError::Io { path: path.into(), error };
        let mut reader = BufReader::new(File::open(path).map_err(io_err)?);
        let line = read_line(&mut reader)
            .map_err(|_| Y4mError::NotY4m { path: path.into() })?
            .ok_or_else(|| Y4mError::NotY4m { path: path.into() })?;
        let header = parse_header(&line, path)?;
        let first_frame_offset = reader.stream_position().map_err(io_err)?;
        let mut this = Self { path: path.into(), reader, header, first_frame_offset };
        if this.read_frame()?.is_none() {
            return Err(Y4mError::NoFrames { path: path.into() });
        }
        this.reader.seek(SeekFrom::Start(first_frame_offset)).map_err(io_err)?;
        Ok(this)
    }

    pub fn header(&self) -> Y4mHeader {
        self.header
    }

    /// Bytes before the first frame (the header line).
    pub fn header_len(&self) -> usize {
        self.first_frame_offset as usize
    }

    /// The next frame, going back to the first after the last.
    pub fn next_frame(&mut self) -> Result<VideoFrame, Y4mError> {
        if let Some(frame) = self.read_frame()? {
            return Ok(frame);
        }
        self.reader
            .seek(SeekFrom::Start(self.first_frame_offset))
            .map_err(|error| Y4mError::Io { path: self.path.clone(), error })?;
        self.read_frame()?.ok_or_else(|| Y4mError::NoFrames { path: self.path.clone() })
    }

    /// One frame, or `None` at the end of the file (a trailing partial frame counts as the end).
    fn read_frame(&mut self) -> Result<Option<VideoFrame>, Y4mError> {
        let offset = self.reader.stream_position().unwrap_or(0);
        let bad_frame = || Y4mError::BadFrame { path: self.path.clone(), offset };
        let line = match read_line(&mut self.reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(_) => return Err(bad_frame()),
        };
        if !line.starts_with(b"FRAME") {
            return Err(bad_frame());
        }
        let (w, h) = (self.header.width, self.header.height);
        let mut frame = VideoFrame::black(w, h);
        for plane in [&mut frame.y, &mut frame.u, &mut frame.v] {
            match self.reader.read_exact(plane) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(error) => return Err(Y4mError::Io { path: self.path.clone(), error }),
            }
        }
        Ok(Some(frame))
    }
}

/// Writes frames to a Y4M file. A Y4M file has one picture size, the first frame's: later
/// frames of another size (a peer adapting to its network) are scaled to it, so every frame
/// is kept and the file plays as one picture.
pub struct Y4mWriter {
    path: PathBuf,
    out: BufWriter<File>,
    fps: u32,
    size: Option<(usize, usize)>,
}

impl Y4mWriter {
    pub fn create(path: &Path, fps: u32) -> Result<Self, Y4mError> {
        let file = File::create(path).map_err(|error| Y4mError::Io { path: path.into(), error })?;
        Ok(Self { path: path.into(), out: BufWriter::new(file), fps, size: None })
    }

    /// Appends `frame`, scaled to the first frame's size if it has another.
    pub fn write(&mut self, frame: &VideoFrame) -> Result<(), Y4mError> {
        let io_err = |error| Y4mError::Io { path: self.path.clone(), error };
        let size = (frame.width, frame.height);
        let scaled = match self.size {
            None => {
                writeln!(self.out, "YUV4MPEG2 W{} H{} F{}:1 Ip A1:1 C420jpeg", size.0, size.1, self.fps)
                    .map_err(io_err)?;
                self.size = Some(size);
                None
            }
            Some(first) if first != size => Some(scale_i420(frame, first.0, first.1)),
            Some(_) => None,
        };
        let frame = scaled.as_ref().unwrap_or(frame);
        let io_err = |error| Y4mError::Io { path: self.path.clone(), error };
        self.out.write_all(b"FRAME\n").map_err(io_err)?;
        for plane in [&frame.y, &frame.u, &frame.v] {
            self.out.write_all(plane).map_err(io_err)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), Y4mError> {
        self.out.flush().map_err(|error| Y4mError::Io { path: self.path.clone(), error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pattern::pattern_frame;

    #[test]
    fn written_frames_read_back_and_loop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.y4m");
        let mut writer = Y4mWriter::create(&path, 25).unwrap();
        let mut frames: Vec<_> = (0..3).map(|i| pattern_frame(i, 128, 64, 0)).collect();
        for f in &frames {
            writer.write(f).unwrap();
        }
        // A frame of another size is scaled to the first size (black stays black).
        writer.write(&VideoFrame::black(64, 32)).unwrap();
        frames.push(VideoFrame::black(128, 64));
        writer.finish().unwrap();

        let mut reader = Y4mReader::open(&path).unwrap();
        assert_eq!(reader.header(), Y4mHeader { width: 128, height: 64, fps: Some(25.0) });
        for expected in frames.iter().chain(&frames) {
            assert_eq!(&reader.next_frame().unwrap(), expected);
        }
    }

    #[test]
    fn bad_headers_are_refused_with_the_reason() {
        let p = Path::new("x.y4m");
        assert!(matches!(parse_header(b"RIFF....", p), Err(Y4mError::NotY4m { .. })));
        assert!(matches!(parse_header(b"YUV4MPEG2 W640", p), Err(Y4mError::BadHeader { .. })));
        assert!(matches!(parse_header(b"YUV4MPEG2 W640 H480 C444", p), Err(Y4mError::UnsupportedColourSpace { .. })));
        assert!(matches!(parse_header(b"YUV4MPEG2 W99999 H480", p), Err(Y4mError::BadSize { .. })));
        assert!(matches!(parse_header(b"YUV4MPEG2 W641 H480", p), Err(Y4mError::BadSize { .. })));
        assert!(matches!(parse_header(b"YUV4MPEG2 W-1 H480", p), Err(Y4mError::BadHeader { .. })));
        // A field starting with a multi-byte character is skipped, not split inside it.
        assert!(parse_header("YUV4MPEG2 W64 H64 \u{e9}x".as_bytes(), p).is_ok());
        let ok = parse_header(b"YUV4MPEG2 W640 H480 F30000:1001 Ip A1:1 C420mpeg2 XYSCSS=420MPEG2", p).unwrap();
        assert_eq!((ok.width, ok.height), (640, 480));
        assert!((ok.fps.unwrap() - 29.97).abs() < 0.01);
    }

    #[test]
    fn a_file_without_frames_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.y4m");
        std::fs::write(&path, b"YUV4MPEG2 W64 H64\nFRAME\n\x10\x10").unwrap();
        assert!(matches!(Y4mReader::open(&path), Err(Y4mError::NoFrames { .. })));
    }
}
