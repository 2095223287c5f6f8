//! Reads the picture size each H.264 sequence parameter set (SPS) in an access unit
//! announces, so a peer's video is checked against the size limit before the decoder
//! allocates for it. Parses exactly the fields in front of the size (ITU-T H.264 7.3.2.1.1).

/// The largest picture accepted from a peer, in either orientation.
pub const MAX_LONG_SIDE: u64 = 3840;
pub const MAX_SHORT_SIDE: u64 = 2160;

/// A problem with an SPS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpsError {
    /// The SPS ends before its picture size.
    #[error("the video's sequence parameter set is cut short")]
    Truncated,
    /// A field holds a value the standard does not allow.
    #[error("the video's sequence parameter set is invalid: {0}")]
    Invalid(&'static str),
    /// The announced picture is larger than we decode.
    #[error("the video announces {width}x{height} pictures, above the limit of {MAX_LONG_SIDE}x{MAX_SHORT_SIDE}")]
    TooLarge { width: u64, height: u64 },
}

/// Checks every SPS in an Annex B access unit; `Ok` if there is none.
pub fn check_access_unit(annex_b: &[u8]) -> Result<(), SpsError> {
    for (width, height) in announced_sizes(annex_b)? {
        if width.max(height) > MAX_LONG_SIDE || width.min(height) > MAX_SHORT_SIDE {
            return Err(SpsError::TooLarge { width, height });
        }
    }
    Ok(())
}

/// The picture size each SPS in an Annex B access unit announces, in order: width and
/// height in luma samples, whole macroblocks (before cropping: 360 lines read as 368).
pub fn announced_sizes(annex_b: &[u8]) -> Result<Vec<(u64, u64)>, SpsError> {
    nal_units(annex_b)
        .filter(|nal| nal.first().is_some_and(|header| header & 0x1f == 7))
        .map(|sps| picture_size(&unescape(&sps[1..])))
        .collect()
}

/// The NAL units of an Annex B stream (between 00 00 01 start codes).
fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts.iter().skip(1).map(|&s| s - 3).chain([data.len()]).collect();
    starts.into_iter().zip(ends).map(move |(s, e)| {
        let mut nal = &data[s..e.max(s)];
        while nal.last() == Some(&0) {
            nal = &nal[..nal.len() - 1]; // trailing zeros belong to the next start code
        }
        nal
    })
}

/// Removes emulation-prevention bytes (00 00 03 -> 00 00).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u64, SpsError> {
        let byte = self.data.get(self.pos / 8).ok_or(SpsError::Truncated)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u64::from(bit))
    }

    fn bits(&mut self, n: u32) -> Result<u64, SpsError> {
        (0..n).try_fold(0, |acc, _| Ok((acc << 1) | self.bit()?))
    }

    /// Unsigned exp-Golomb.
    fn ue(&mut self) -> Result<u64, SpsError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 32 {
                return Err(SpsError::Invalid("exp-Golomb code longer than 32 bits"));
            }
        }
        Ok((1 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Signed exp-Golomb.
    fn se(&mut self) -> Result<i64, SpsError> {
        let k = self.ue()? as i64;
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// Width and height (in luma samples, before cropping) from an SPS payload.
fn picture_size(rbsp: &[u8]) -> Result<(u64, u64), SpsError> {
    read_to_size(&mut Bits { data: rbsp, pos: 0 })
}

/// Reads an SPS up to and including its size fields (and frame_mbs_only_flag), which it
/// returns as width and height in luma samples.
fn read_to_size(r: &mut Bits<'_>) -> Result<(u64, u64), SpsError> {
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    if r.ue()? > 31 {
        return Err(SpsError::Invalid("seq_parameter_set_id above 31"));
    }
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        let chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(SpsError::Invalid("chroma_format_idc above 3"));
        }
        if chroma_format_idc == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(SpsError::Invalid("num_ref_frames_in_pic_order_cnt_cycle above 255"));
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return Err(SpsError::Invalid("pic_order_cnt_type above 2")),
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    Ok((width_mbs * 16, height_map_units * 16 * (2 - frame_mbs_only)))
}

fn skip_scaling_list(r: &mut Bits<'_>, size: usize) -> Result<(), SpsError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::codec::{EncoderSettings, VideoEncoder};
    use crate::media::pattern::pattern_frame;

    /// Writes a baseline SPS announcing `width_mbs` x `height_mbs` macroblocks.
    pub(crate) fn baseline_sps(width_mbs: u64, height_mbs: u64) -> Vec<u8> {
        let mut bits = Vec::new();
        let mut put = |value: u64, n: u32| (0..n).rev().for_each(|i| bits.push((value >> i) & 1 == 1));
        put(66, 8); // profile_idc: baseline
        put(0xc01f, 16); // constraints, level 3.1
        let ue = |v: u64, put: &mut dyn FnMut(u64, u32)| {
            let n = 64 - (v + 1).leading_zeros();
            put(0, n - 1);
            put(v + 1, n);
        };
        ue(0, &mut put); // sps id
        ue(0, &mut put); // log2_max_frame_num_minus4
        ue(2, &mut put); // pic_order_cnt_type 2
        ue(1, &mut put); // max_num_ref_frames
        put(0, 1);
        ue(width_mbs - 1, &mut put);
        ue(height_mbs - 1, &mut put);
        put(1, 1); // frame_mbs_only
        put(1, 1); // rbsp stop bit (after the fields we read)
        let mut out = vec![0, 0, 0, 1, 0x67];
        for chunk in bits.chunks(8) {
            out.push(chunk.iter().enumerate().fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << (7 - i))));
        }
        out
    }

    #[test]
    fn openh264s_own_sps_reads_as_the_encoded_size() {
        for (w, h) in [(640, 480), (1280, 720), (1920, 1080)] {
            let settings = EncoderSettings { fps: 30, bitrate_kbps: 1000, keyframe_interval_secs: 0 };
            let idr = VideoEncoder::new(settings).unwrap().encode(&pattern_frame(0, w, h, 0)).unwrap().unwrap();
            assert_eq!(announced_sizes(&idr.data), Ok(vec![(w as u64, (h as u64).div_ceil(16) * 16)]), "{w}x{h}");
            assert_eq!(check_access_unit(&idr.data), Ok(()));
        }
    }

    /// What an SPS says of its colours: whether it is full range, and its matrix
    /// coefficients, each `None` where the SPS leaves them out (the decoder then assumes
    /// limited range and, for standard definition, BT.601).
    fn signal_type(rbsp: &[u8]) -> (Option<bool>, Option<u64>) {
        let mut r = Bits { data: rbsp, pos: 0 };
        let (_, height) = read_to_size(&mut r).unwrap();
        assert_eq!(height % 16, 0);
        r.bit().unwrap(); // direct_8x8_inference_flag (frame_mbs_only: openh264 is progressive)
        if r.bit().unwrap() == 1 {
            for _ in 0..4 {
                r.ue().unwrap(); // frame cropping offsets
            }
        }
        if r.bit().unwrap() == 0 {
            return (None, None); // no VUI
        }
        if r.bit().unwrap() == 1 && r.bits(8).unwrap() == 255 {
            r.bits(32).unwrap(); // extended sample aspect ratio
        }
        if r.bit().unwrap() == 1 {
            r.bit().unwrap(); // overscan_appropriate_flag
        }
        if r.bit().unwrap() == 0 {
            return (None, None); // no video signal type
        }
        r.bits(3).unwrap(); // video_format
        let full_range = r.bit().unwrap() == 1;
        if r.bit().unwrap() == 0 {
            return (Some(full_range), None);
        }
        r.bits(16).unwrap(); // colour_primaries, transfer_characteristics
        (Some(full_range), Some(r.bits(8).unwrap()))
    }

    #[test]
    fn openh264_signals_limited_range_bt601_colours_as_the_converters_use() {
        // The converters (media::convert) use BT.601 limited range: the stream must say so,
        // or say nothing, which a decoder reads the same way.
        let settings = EncoderSettings { fps: 30, bitrate_kbps: 1000, keyframe_interval_secs: 0 };
        let idr = VideoEncoder::new(settings).unwrap().encode(&pattern_frame(0, 1280, 720, 0)).unwrap().unwrap();
        let sps = nal_units(&idr.data).find(|nal| nal[0] & 0x1f == 7).unwrap();
        let (full_range, matrix) = signal_type(&unescape(&sps[1..]));
        assert_ne!(full_range, Some(true), "the stream says full range");
        // 5 and 6 are BT.601 (625 and 525 lines); 2 is "unspecified".
        assert!(matrix.is_none_or(|m| [2, 5, 6].contains(&m)), "matrix coefficients {matrix:?}");
    }

    #[test]
    fn an_sps_announcing_8192x8192_is_refused() {
        assert_eq!(check_access_unit(&baseline_sps(512, 512)), Err(SpsError::TooLarge { width: 8192, height: 8192 }));
        assert_eq!(check_access_unit(&baseline_sps(240, 135)), Ok(()), "3840x2160");
        assert_eq!(check_access_unit(&baseline_sps(135, 240)), Ok(()), "portrait 2160x3840");
        assert!(check_access_unit(&baseline_sps(241, 135)).is_err());
    }

    #[test]
    fn broken_sps_are_refused_not_trusted() {
        let sps = baseline_sps(40, 30);
        for cut in 5..sps.len() - 1 {
            assert!(check_access_unit(&sps[..cut]).is_err(), "cut at {cut}");
        }
        let endless_code = [0, 0, 1, 0x67, 66, 0, 0, 0, 0, 0, 0, 0, 0x80];
        assert_eq!(check_access_unit(&endless_code), Err(SpsError::Invalid("exp-Golomb code longer than 32 bits")));
        assert_eq!(check_access_unit(b"no start code"), Ok(()));
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
