//! Finds where each JPEG picture ends in an MJPEG stream (JPEG pictures one after another,
//! as `ffmpeg -f mjpeg` writes them): marker segments are skipped by their lengths, and
//! entropy-coded data is scanned for the next marker, so a thumbnail inside a picture or
//! an FF D9 in its data does not end it early.

/// The largest JPEG picture taken from a stream.
pub const MAX_PICTURE_BYTES: usize = 16 << 20;

/// A stream that is not JPEG pictures one after another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("no JPEG picture starts here (expected FF D8, found {0:02X} {1:02X})")]
    NotJpeg(u8, u8),
    #[error("a JPEG picture has a broken marker segment (FF {marker:02X} of length {length})")]
    BadSegment { marker: u8, length: usize },
    #[error("a JPEG picture runs past {MAX_PICTURE_BYTES} bytes")]
    TooLarge,
}

/// The length of the JPEG picture at the start of `data`, `None` if `data` ends before it
/// does (read more and ask again).
pub fn picture_length(data: &[u8]) -> Result<Option<usize>, StreamError> {
    match data {
        [0xFF, 0xD8, ..] => {}
        [a, b, ..] => return Err(StreamError::NotJpeg(*a, *b)),
        _ => return Ok(None),
    }
    let mut at = 2;
    loop {
        if at > MAX_PICTURE_BYTES {
            return Err(StreamError::TooLarge);
        }
        // Markers may be padded with any number of FF bytes.
        let Some(marker_at) = data.get(at..).and_then(|rest| rest.iter().position(|&b| b != 0xFF)).map(|i| at + i)
        else {
            return Ok(None);
        };
        if marker_at == at {
            return Err(StreamError::BadSegment { marker: data[at], length: 0 });
        }
        let marker = data[marker_at];
        at = marker_at + 1;
        match marker {
            0xD9 => return Ok(Some(at)),
            0xD0..=0xD7 | 0x01 => continue,
            0x00 | 0xD8 => return Err(StreamError::BadSegment { marker, length: 0 }),
            _ => {}
        }
        let Some(&[high, low]) = data.get(at..at + 2) else { return Ok(None) };
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length < 2 {
            return Err(StreamError::BadSegment { marker, length });
        }
        at += length;
        if marker == 0xDA {
            // Entropy-coded data: FF 00 is a data byte, FF D0-D7 a restart marker; any
            // other FF starts the next marker.
            at = match next_marker(data, at) {
                Some(next) => next,
                None if data.len() > MAX_PICTURE_BYTES => return Err(StreamError::TooLarge),
                None => return Ok(None),
            };
        }
    }
}

/// Where the first marker at or after `from` starts, skipping stuffed bytes and restarts.
fn next_marker(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        at += data.get(at..)?.iter().position(|&b| b == 0xFF)?;
        match *data.get(at + 1)? {
            0x00 | 0xD0..=0xD7 | 0xFF => at += 1,
            _ => return Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A skeleton picture: an APP segment holding a whole embedded JPEG, a scan whose data
    /// holds stuffed FF 00 bytes and a restart marker, and the end.
    fn picture() -> Vec<u8> {
        let mut p = vec![0xFF, 0xD8];
        p.extend([0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xD8, 0xFF, 0xD9, 0x00, 0x00]);
        p.extend([0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        p.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0x00]);
        p.extend([0xFF, 0xFF, 0xD9]);
        p
    }

    #[test]
    fn a_picture_ends_at_its_own_end_marker_not_an_embedded_one() {
        let one = picture();
        let mut two = one.clone();
        two.extend(picture());
        assert_eq!(picture_length(&two), Ok(Some(one.len())));
        for cut in 0..one.len() {
            assert_eq!(picture_length(&one[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn what_is_not_a_jpeg_stream_is_named() {
        assert_eq!(picture_length(b"RIFF...."), Err(StreamError::NotJpeg(b'R', b'I')));
        assert_eq!(
            picture_length(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]),
            Err(StreamError::BadSegment { marker: 0xE0, length: 1 })
        );
        assert!(picture_length(&[0xFF, 0xD8, 0x00]).is_err());
        let mut endless = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
        endless.resize(MAX_PICTURE_BYTES + 10, 0x11);
        assert_eq!(picture_length(&endless), Err(StreamError::TooLarge));
    }

    #[test]
    fn a_real_encoders_pictures_split_where_they_were_joined() {
        use crate::media::mjpeg::tests::{gradient, jpeg};
        let first = jpeg(&gradient(64, 48), 64, 48, Some((2, 1)));
        let second = jpeg(&gradient(32, 16), 32, 16, Some((2, 2)));
        let stream = [first.clone(), second.clone()].concat();
        assert_eq!(picture_length(&stream), Ok(Some(first.len())));
        assert_eq!(picture_length(&stream[first.len()..]), Ok(Some(second.len())));
    }
}
