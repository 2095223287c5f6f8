//! The QUIC wire format, sans IO: control messages on the one bidirectional stream, the
//! headers of the video streams (one unidirectional stream per group of pictures), and the
//! datagrams (sound, and the receiver's reports).
//!
//! Control message:  `len: u16 BE` (of what follows, at most `MAX_CONTROL_BYTES`), `type: u8`, body:
//!                   1 hello, 2 keyframe request, 3 ping, 4 pong, 5 hang-up,
//!                   6 media state (`flags: u8`, bit 0 muted, bit 1 camera off).
//! Video stream:     `STREAM_VIDEO: u8`, `group: u64 BE`, then frames, each
//!                   `flags: u8` (bit 0 keyframe), `seq: u64`, `capture_us: u64`, `sent_us: u64`,
//!                   `len: u32`, payload.
//! Audio datagram:   `DATAGRAM_AUDIO: u8`, `seq: u64`, `capture_us: u64`, one 10 ms Opus packet
//!                   (1 to `MAX_AUDIO_PAYLOAD` bytes).
//!                   Or, while the path loses packets, `DATAGRAM_AUDIO_WITH_PREVIOUS: u8`, `seq`,
//!                   `capture_us`, `len: u16 BE`, that many bytes of packet `seq`, then packet
//!                   `seq - 1` again (each 1 to `MAX_AUDIO_PAYLOAD` bytes): a lost packet is
//!                   played from the next one's copy (redundant audio, as RFC 2198's RED).
//! Report datagram:  `DATAGRAM_REPORT: u8`, a receiver report (16 bytes, `crate::adapt::report`).
//!                   A datagram, not a control message: a report lost at a capacity drop is
//!                   replaced by the next one 100 ms later, while on the control stream it held
//!                   back every report behind it until it was sent again (they came in bunches
//!                   of three to five, 200-400 ms late, just when the sender needed them).
//! Probe datagram:   `DATAGRAM_PROBE: u8`, `cluster: u16`, `index: u8`, `count: u8` (index < count),
//!                   then at most `MAX_PADDING_BYTES` of padding (`crate::adapt::probe`).
//! Probe result:     `DATAGRAM_PROBE_RESULT: u8`, the receiver's measure of a cluster (6 bytes,
//!                   `crate::adapt::probe::ProbeResult`).
//! Every length is checked against its limit before anything is allocated.

use crate::adapt::probe::{MAX_PADDING_BYTES, PROBE_RESULT_BYTES, ProbeResult};
use crate::adapt::report::{REPORT_BYTES, ReceiverReport};

/// TLS ALPN: the protocol name and version. A peer offering another is refused in the
/// handshake. Version 2 moved the receiver's reports from the control stream to datagrams;
/// version 3 added audio datagrams that carry the previous packet again; version 4 added
/// the time a picture was handed to the transport to its header; version 5 added probe
/// datagrams and their results.
pub const ALPN: &[u8] = b"chat/5";
/// Largest control message body, type byte included.
pub const MAX_CONTROL_BYTES: usize = 1024;
/// Largest encoded picture accepted (an 8K IDR picture at high quality fits).
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// First byte of a unidirectional stream that carries video.
pub const STREAM_VIDEO: u8 = b'V';
/// First byte of a datagram that carries audio.
pub const DATAGRAM_AUDIO: u8 = b'A';
/// First byte of a datagram that carries audio and a copy of the packet before it.
pub const DATAGRAM_AUDIO_WITH_PREVIOUS: u8 = b'B';
/// First byte of a datagram that carries a receiver report.
pub const DATAGRAM_REPORT: u8 = b'R';
/// First byte of a datagram of padding in a probe cluster.
pub const DATAGRAM_PROBE: u8 = b'P';
/// First byte of a datagram that carries the receiver's measure of a probe cluster.
pub const DATAGRAM_PROBE_RESULT: u8 = b'Q';
/// Size of a probe datagram's header.
pub const PROBE_HEADER_BYTES: usize = 5;
/// Largest Opus packet (RFC 6716: 1275 bytes for one frame).
pub const MAX_AUDIO_PAYLOAD: usize = 1275;
/// Size of an audio datagram's header.
pub const AUDIO_HEADER_BYTES: usize = 17;
/// Size of `FrameHeader` on the wire.
pub const FRAME_HEADER_BYTES: usize = 29;

const KEYFRAME_FLAG: u8 = 1;

/// A malformed message from the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message type byte is not one this version knows.
    #[error("unknown control message type {0}")]
    UnknownMessage(u8),
    /// The message is shorter or longer than its type requires.
    #[error("control message type {kind} has {found} body bytes, expected {expected}")]
    BadLength { kind: u8, expected: usize, found: usize },
    /// A control message with no type byte.
    #[error("empty control message")]
    Empty,
    /// A declared length above its limit.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge { what: &'static str, len: usize, max: usize },
    /// Flag bits this version does not define.
    #[error("unknown frame flags {0:#04x}")]
    BadFlags(u8),
    /// A unidirectional stream of a kind this version does not know.
    #[error("unknown stream type {0:#04x}")]
    UnknownStream(u8),
    /// A datagram of a kind this version does not know.
    #[error("unknown datagram type {0:#04x}")]
    UnknownDatagram(u8),
    /// A datagram with no room for its header or its content.
    #[error("datagram of {0} bytes is too short")]
    ShortDatagram(usize),
    /// An audio datagram whose packet length leaves no room for the copy of the one before.
    #[error("audio datagram says its packet has {len} bytes, with {body} bytes for it and the copy after it")]
    BadAudioCopy { len: usize, body: usize },
    /// A receiver report whose fields make no sense.
    #[error("bad receiver report: {0}")]
    BadReport(String),
    /// A probe datagram numbered outside its cluster.
    #[error("probe datagram {index} of a cluster of {count}")]
    BadProbe { index: u8, count: u8 },
    /// A probe result that is not exactly its 6 bytes.
    #[error("probe result of {0} bytes, expected {PROBE_RESULT_BYTES}")]
    BadProbeResult(usize),
}

/// A message on the control stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlMessage {
    /// First message each way: what this peer sends.
    Hello { width: u16, height: u16, fps: u16 },
    /// "I cannot decode: start a new group with an IDR picture."
    KeyframeRequest,
    /// Clock probe: the sender's wall clock when sent.
    Ping { sent_us: u64 },
    /// Answer to a ping: its time, when it arrived and when the answer left (peer's clock).
    Pong { ping_sent_us: u64, received_us: u64, sent_us: u64 },
    /// "I am hanging up." Unlike QUIC's close frame this is retransmitted until it
    /// arrives, so a lossy link cannot turn a hang-up into a lost call.
    HangUp,
    /// The sender's microphone and camera switches, sent at the start and on every change.
    MediaState { muted: bool, camera_off: bool },
}

const HELLO: u8 = 1;
const KEYFRAME_REQUEST: u8 = 2;
const PING: u8 = 3;
const PONG: u8 = 4;
const HANG_UP: u8 = 5;
const MEDIA_STATE: u8 = 6;
const MUTED_FLAG: u8 = 1;
const CAMERA_OFF_FLAG: u8 = 2;

impl ControlMessage {
    /// The message with its length prefix, ready to write.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(32);
        match *self {
            Self::Hello { width, height, fps } => {
                body.push(HELLO);
                body.extend_from_slice(&width.to_be_bytes());
                body.extend_from_slice(&height.to_be_bytes());
                body.extend_from_slice(&fps.to_be_bytes());
            }
            Self::KeyframeRequest => body.push(KEYFRAME_REQUEST),
            Self::Ping { sent_us } => {
                body.push(PING);
                body.extend_from_slice(&sent_us.to_be_bytes());
            }
            Self::Pong { ping_sent_us, received_us, sent_us } => {
                body.push(PONG);
                for t in [ping_sent_us, received_us, sent_us] {
                    body.extend_from_slice(&t.to_be_bytes());
                }
            }
            Self::HangUp => body.push(HANG_UP),
            Self::MediaState { muted, camera_off } => {
                body.push(MEDIA_STATE);
                body.push(if muted { MUTED_FLAG } else { 0 } | if camera_off { CAMERA_OFF_FLAG } else { 0 });
            }
        }
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    /// Checks a length prefix before the body is read.
    pub fn check_length(len: u16) -> Result<usize, WireError> {
        let len = usize::from(len);
        if len > MAX_CONTROL_BYTES {
            return Err(WireError::TooLarge { what: "control message", len, max: MAX_CONTROL_BYTES });
        }
        Ok(len)
    }

    /// Parses a message body (what follows the length prefix).
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let (&kind, rest) = body.split_first().ok_or(WireError::Empty)?;
        let expect = |expected: usize| {
            if rest.len() == expected {
                Ok(())
            } else {
                Err(WireError::BadLength { kind, expected, found: rest.len() })
            }
        };
        let u16_at = |i: usize| u16::from_be_bytes([rest[i], rest[i + 1]]);
        let u64_at = |i: usize| u64::from_be_bytes(rest[i..i + 8].try_into().expect("length checked"));
        match kind {
            HELLO => {
                expect(6)?;
                Ok(Self::Hello { width: u16_at(0), height: u16_at(2), fps: u16_at(4) })
            }
            KEYFRAME_REQUEST => {
                expect(0)?;
                Ok(Self::KeyframeRequest)
            }
            PING => {
                expect(8)?;
                Ok(Self::Ping { sent_us: u64_at(0) })
            }
            PONG => {
                expect(24)?;
                Ok(Self::Pong { ping_sent_us: u64_at(0), received_us: u64_at(8), sent_us: u64_at(16) })
            }
            HANG_UP => {
                expect(0)?;
                Ok(Self::HangUp)
            }
            MEDIA_STATE => {
                expect(1)?;
                let flags = rest[0];
                if flags & !(MUTED_FLAG | CAMERA_OFF_FLAG) != 0 {
                    return Err(WireError::BadFlags(flags));
                }
                Ok(Self::MediaState { muted: flags & MUTED_FLAG != 0, camera_off: flags & CAMERA_OFF_FLAG != 0 })
            }
            other => Err(WireError::UnknownMessage(other)),
        }
    }
}

/// The header in front of each encoded picture on a video stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Picture number, counting from 0 at the start of the call, across groups.
    pub seq: u64,
    /// Capture time, microseconds on the sender's wall clock.
    pub capture_us: u64,
    /// When the sender handed the picture to the transport, microseconds on the same clock.
    /// The receiver times the path from it: from the capture time, the sender's own
    /// lateness (an encoder behind its frame interval) read as a queue on the path.
    pub sent_us: u64,
    pub keyframe: bool,
    /// Payload bytes that follow.
    pub len: u32,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut out = [0u8; FRAME_HEADER_BYTES];
        out[0] = if self.keyframe { KEYFRAME_FLAG } else { 0 };
        out[1..9].copy_from_slice(&self.seq.to_be_bytes());
        out[9..17].copy_from_slice(&self.capture_us.to_be_bytes());
        out[17..25].copy_from_slice(&self.sent_us.to_be_bytes());
        out[25..29].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// Parses and checks a header; `len` is within `MAX_FRAME_BYTES` when this succeeds.
    pub fn decode(bytes: &[u8; FRAME_HEADER_BYTES]) -> Result<Self, WireError> {
        let flags = bytes[0];
        if flags & !KEYFRAME_FLAG != 0 {
            return Err(WireError::BadFlags(flags));
        }
        let len = u32::from_be_bytes(bytes[25..29].try_into().expect("fixed size"));
        if len as usize > MAX_FRAME_BYTES {
            return Err(WireError::TooLarge { what: "video frame", len: len as usize, max: MAX_FRAME_BYTES });
        }
        Ok(Self {
            seq: u64::from_be_bytes(bytes[1..9].try_into().expect("fixed size")),
            capture_us: u64::from_be_bytes(bytes[9..17].try_into().expect("fixed size")),
            sent_us: u64::from_be_bytes(bytes[17..25].try_into().expect("fixed size")),
            keyframe: flags & KEYFRAME_FLAG != 0,
            len,
        })
    }
}

/// The bytes that open a video stream for group `group`.
pub fn video_stream_preamble(group: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = STREAM_VIDEO;
    out[1..].copy_from_slice(&group.to_be_bytes());
    out
}

/// Parses a unidirectional stream's preamble; returns the video group number.
pub fn parse_stream_preamble(bytes: &[u8; 9]) -> Result<u64, WireError> {
    if bytes[0] != STREAM_VIDEO {
        return Err(WireError::UnknownStream(bytes[0]));
    }
    Ok(u64::from_be_bytes(bytes[1..].try_into().expect("fixed size")))
}

/// One audio packet: its number, capture time (sender's clock) and Opus payload, and
/// perhaps a copy of packet `seq - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioDatagram<'a> {
    pub seq: u64,
    pub capture_us: u64,
    pub payload: &'a [u8],
    /// Packet `seq - 1` again, captured one frame before this one.
    pub previous: Option<&'a [u8]>,
}

impl AudioDatagram<'_> {
    /// Its size on the wire.
    pub fn encoded_len(&self) -> usize {
        let copy_len = self.previous.map_or(0, |previous| 2 + previous.len());
        AUDIO_HEADER_BYTES + copy_len + self.payload.len()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(if self.previous.is_some() { DATAGRAM_AUDIO_WITH_PREVIOUS } else { DATAGRAM_AUDIO });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.capture_us.to_be_bytes());
        if let Some(previous) = self.previous {
            let len = u16::try_from(self.payload.len()).expect("an Opus packet is at most 1275 bytes");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(self.payload);
            out.extend_from_slice(previous);
        } else {
            out.extend_from_slice(self.payload);
        }
        out
    }
}

impl<'a> AudioDatagram<'a> {
    /// Parses and checks a datagram from the peer.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (&kind, _) = bytes.split_first().ok_or(WireError::ShortDatagram(0))?;
        if kind != DATAGRAM_AUDIO && kind != DATAGRAM_AUDIO_WITH_PREVIOUS {
            return Err(WireError::UnknownDatagram(kind));
        }
        if bytes.len() <= AUDIO_HEADER_BYTES {
            return Err(WireError::ShortDatagram(bytes.len()));
        }
        let body = &bytes[AUDIO_HEADER_BYTES..];
        let (payload, previous) = if kind == DATAGRAM_AUDIO {
            (body, None)
        } else {
            let (len, rest) = body.split_first_chunk::<2>().ok_or(WireError::ShortDatagram(bytes.len()))?;
            let len = usize::from(u16::from_be_bytes(*len));
            // Both packets hold at least a byte.
            if len == 0 || len >= rest.len() {
                return Err(WireError::BadAudioCopy { len, body: rest.len() });
            }
            let (payload, previous) = rest.split_at(len);
            (payload, Some(previous))
        };
        for packet in std::iter::once(payload).chain(previous) {
            if packet.len() > MAX_AUDIO_PAYLOAD {
                return Err(WireError::TooLarge { what: "audio packet", len: packet.len(), max: MAX_AUDIO_PAYLOAD });
            }
        }
        Ok(Self {
            seq: u64::from_be_bytes(bytes[1..9].try_into().expect("length checked")),
            capture_us: u64::from_be_bytes(bytes[9..17].try_into().expect("length checked")),
            payload,
            previous,
        })
    }
}

/// Padding in a probe cluster: datagram `index` of `count` in cluster `cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeDatagram<'a> {
    pub cluster: u16,
    pub index: u8,
    pub count: u8,
    pub padding: &'a [u8],
}

impl<'a> ProbeDatagram<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROBE_HEADER_BYTES + self.padding.len());
        out.push(DATAGRAM_PROBE);
        out.extend_from_slice(&self.cluster.to_be_bytes());
        out.extend_from_slice(&[self.index, self.count]);
        out.extend_from_slice(self.padding);
        out
    }

    /// Parses and checks a probe datagram from the peer (type byte included).
    fn decode(bytes: &'a [u8]) -> Result<Self, WireError> {
        let Some((header, padding)) = bytes.split_first_chunk::<PROBE_HEADER_BYTES>() else {
            return Err(WireError::ShortDatagram(bytes.len()));
        };
        let [_, high, low, index, count] = *header;
        if index >= count {
            return Err(WireError::BadProbe { index, count });
        }
        if padding.len() > MAX_PADDING_BYTES {
            return Err(WireError::TooLarge { what: "probe padding", len: padding.len(), max: MAX_PADDING_BYTES });
        }
        Ok(Self { cluster: u16::from_be_bytes([high, low]), index, count, padding })
    }
}

/// A datagram from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram<'a> {
    Audio(AudioDatagram<'a>),
    /// What the peer saw of our video since its last report (every 100 ms): what our rate
    /// adaptation estimates the path from.
    Report(ReceiverReport),
    /// Padding in one of the peer's probe clusters: measure how fast it arrives.
    Probe(ProbeDatagram<'a>),
    /// How fast one of our probe clusters arrived.
    ProbeResult(ProbeResult),
}

impl<'a> Datagram<'a> {
    /// Parses and checks a datagram from the peer.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, WireError> {
        match bytes.first() {
            Some(&DATAGRAM_REPORT) => {
                ReceiverReport::decode(&bytes[1..]).map(Self::Report).map_err(|e| WireError::BadReport(e.to_string()))
            }
            Some(&DATAGRAM_PROBE) => ProbeDatagram::decode(bytes).map(Self::Probe),
            Some(&DATAGRAM_PROBE_RESULT) => ProbeResult::decode(&bytes[1..])
                .map(Self::ProbeResult)
                .ok_or(WireError::BadProbeResult(bytes.len() - 1)),
            _ => AudioDatagram::decode(bytes).map(Self::Audio),
        }
    }

    /// The datagram as sent.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Audio(audio) => audio.encode(),
            Self::Report(report) => {
                let mut out = Vec::with_capacity(1 + REPORT_BYTES);
                out.push(DATAGRAM_REPORT);
                out.extend_from_slice(&report.encode());
                out
            }
            Self::Probe(probe) => probe.encode(),
            Self::ProbeResult(result) => {
                let mut out = Vec::with_capacity(1 + PROBE_RESULT_BYTES);
                out.push(DATAGRAM_PROBE_RESULT);
                out.extend_from_slice(&result.encode());
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: ControlMessage) {
        let bytes = msg.encode();
        let len = ControlMessage::check_length(u16::from_be_bytes([bytes[0], bytes[1]])).unwrap();
        assert_eq!(len, bytes.len() - 2);
        assert_eq!(ControlMessage::decode(&bytes[2..]), Ok(msg));
    }

    #[test]
    fn control_messages_round_trip() {
        round_trip(ControlMessage::Hello { width: 1280, height: 720, fps: 30 });
        round_trip(ControlMessage::KeyframeRequest);
        round_trip(ControlMessage::Ping { sent_us: u64::MAX });
        round_trip(ControlMessage::Pong { ping_sent_us: 1, received_us: 2, sent_us: 3 });
        round_trip(ControlMessage::HangUp);
        for (muted, camera_off) in [(false, false), (true, false), (false, true), (true, true)] {
            round_trip(ControlMessage::MediaState { muted, camera_off });
        }
        assert_eq!(ControlMessage::decode(&[MEDIA_STATE, 4]), Err(WireError::BadFlags(4)));
    }

    #[test]
    fn audio_datagrams_round_trip_and_are_checked() {
        let datagram = AudioDatagram { seq: 9, capture_us: 1_700_000_000_000_000, payload: &[1, 2, 3], previous: None };
        let bytes = datagram.encode();
        assert_eq!(bytes.len(), AUDIO_HEADER_BYTES + 3);
        assert_eq!(AudioDatagram::decode(&bytes), Ok(datagram));
        assert_eq!(AudioDatagram::decode(&bytes[..AUDIO_HEADER_BYTES]), Err(WireError::ShortDatagram(17)));
        assert_eq!(AudioDatagram::decode(&[]), Err(WireError::ShortDatagram(0)));
        assert_eq!(AudioDatagram::decode(b"V12345678901234567890"), Err(WireError::UnknownDatagram(b'V')));
        let huge = AudioDatagram { seq: 0, capture_us: 0, payload: &[0; MAX_AUDIO_PAYLOAD + 1], previous: None };
        assert!(matches!(AudioDatagram::decode(&huge.encode()), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn audio_datagrams_with_the_previous_packet_round_trip_and_are_checked() {
        let datagram = AudioDatagram { seq: 9, capture_us: 7, payload: &[1, 2, 3], previous: Some(&[4, 5]) };
        let bytes = datagram.encode();
        assert_eq!(bytes.len(), datagram.encoded_len());
        assert_eq!(bytes[0], DATAGRAM_AUDIO_WITH_PREVIOUS);
        assert_eq!(&bytes[AUDIO_HEADER_BYTES..], [0, 3, 1, 2, 3, 4, 5]);
        assert_eq!(AudioDatagram::decode(&bytes), Ok(datagram.clone()));
        assert_eq!(Datagram::decode(&bytes), Ok(Datagram::Audio(datagram)));
        // A length that leaves nothing for the copy, or claims more than there is.
        let mut no_copy = bytes[..AUDIO_HEADER_BYTES].to_vec();
        no_copy.extend_from_slice(&[0, 3, 1, 2, 3]);
        assert_eq!(AudioDatagram::decode(&no_copy), Err(WireError::BadAudioCopy { len: 3, body: 3 }));
        no_copy[AUDIO_HEADER_BYTES + 1] = 200;
        assert_eq!(AudioDatagram::decode(&no_copy), Err(WireError::BadAudioCopy { len: 200, body: 3 }));
        let mut empty = bytes[..AUDIO_HEADER_BYTES].to_vec();
        empty.extend_from_slice(&[0, 0, 1]);
        assert_eq!(AudioDatagram::decode(&empty), Err(WireError::BadAudioCopy { len: 0, body: 1 }));
        assert_eq!(AudioDatagram::decode(&bytes[..AUDIO_HEADER_BYTES + 1]), Err(WireError::ShortDatagram(18)));
        let big = [0; MAX_AUDIO_PAYLOAD + 1];
        let huge = AudioDatagram { seq: 0, capture_us: 0, payload: &[1], previous: Some(&big) };
        assert!(matches!(AudioDatagram::decode(&huge.encode()), Err(WireError::TooLarge { .. })));
        let huge = AudioDatagram { seq: 0, capture_us: 0, payload: &big, previous: Some(&[1]) };
        assert!(matches!(AudioDatagram::decode(&huge.encode()), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn report_datagrams_round_trip_and_are_checked() {
        let report = ReceiverReport {
            receive_kbps: 480,
            delay_trend_us_per_s: -3_000,
            queuing_delay_ms: 12,
            interval_ms: 100,
            frames_received: 3,
            frames_lost: 1,
        };
        let bytes = Datagram::Report(report).encode();
        assert_eq!((bytes.len(), bytes[0]), (1 + REPORT_BYTES, DATAGRAM_REPORT));
        assert_eq!(Datagram::decode(&bytes), Ok(Datagram::Report(report)));
        assert!(matches!(Datagram::decode(&bytes[..REPORT_BYTES]), Err(WireError::BadReport(_))));
        assert!(matches!(Datagram::decode(&[DATAGRAM_REPORT]), Err(WireError::BadReport(_))));
        let audio = AudioDatagram { seq: 1, capture_us: 2, payload: &[3], previous: None };
        assert_eq!(Datagram::decode(&audio.encode()), Ok(Datagram::Audio(audio)));
        assert_eq!(Datagram::decode(b"V12345678901234567890"), Err(WireError::UnknownDatagram(b'V')));
    }

    #[test]
    fn probe_datagrams_and_results_round_trip_and_are_checked() {
        let padding = [0; 300];
        let probe = ProbeDatagram { cluster: 0x0102, index: 2, count: 6, padding: &padding };
        let bytes = probe.encode();
        assert_eq!(bytes[..PROBE_HEADER_BYTES], [DATAGRAM_PROBE, 1, 2, 2, 6]);
        assert_eq!(Datagram::decode(&bytes), Ok(Datagram::Probe(probe)));
        let bare = ProbeDatagram { padding: &[], ..probe };
        assert_eq!(Datagram::decode(&bare.encode()), Ok(Datagram::Probe(bare)));
        assert_eq!(Datagram::decode(&bytes[..4]), Err(WireError::ShortDatagram(4)));
        let outside = ProbeDatagram { index: 6, ..probe };
        assert_eq!(Datagram::decode(&outside.encode()), Err(WireError::BadProbe { index: 6, count: 6 }));
        let big = [0; MAX_PADDING_BYTES + 1];
        let huge = ProbeDatagram { padding: &big, ..probe };
        assert!(matches!(Datagram::decode(&huge.encode()), Err(WireError::TooLarge { .. })));

        let result = ProbeResult { id: 7, received_kbps: 1_234 };
        let bytes = Datagram::ProbeResult(result).encode();
        assert_eq!((bytes.len(), bytes[0]), (1 + PROBE_RESULT_BYTES, DATAGRAM_PROBE_RESULT));
        assert_eq!(Datagram::decode(&bytes), Ok(Datagram::ProbeResult(result)));
        assert_eq!(Datagram::decode(&bytes[..4]), Err(WireError::BadProbeResult(3)));
    }

    #[test]
    fn control_layout_is_fixed() {
        assert_eq!(ControlMessage::Ping { sent_us: 0x0102 }.encode(), [0, 9, 3, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(ControlMessage::KeyframeRequest.encode(), [0, 1, 2]);
    }

    #[test]
    fn malformed_control_messages_are_refused() {
        assert_eq!(ControlMessage::decode(&[]), Err(WireError::Empty));
        assert_eq!(ControlMessage::decode(&[99]), Err(WireError::UnknownMessage(99)));
        assert_eq!(
            ControlMessage::decode(&[PING, 1, 2]),
            Err(WireError::BadLength { kind: PING, expected: 8, found: 2 })
        );
        assert_eq!(
            ControlMessage::decode(&[KEYFRAME_REQUEST, 0]),
            Err(WireError::BadLength { kind: KEYFRAME_REQUEST, expected: 0, found: 1 })
        );
        assert!(matches!(ControlMessage::check_length(u16::MAX), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn frame_headers_round_trip_and_are_checked() {
        let header = FrameHeader {
            seq: 7,
            capture_us: 1_700_000_000_000_000,
            sent_us: 1_700_000_000_040_000,
            keyframe: true,
            len: 1234,
        };
        assert_eq!(FrameHeader::decode(&header.encode()), Ok(header));
        let mut huge = header.encode();
        huge[25..29].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(FrameHeader::decode(&huge), Err(WireError::TooLarge { .. })));
        let mut flags = header.encode();
        flags[0] = 0x81;
        assert_eq!(FrameHeader::decode(&flags), Err(WireError::BadFlags(0x81)));
    }

    #[test]
    fn stream_preambles_round_trip_and_unknown_kinds_are_refused() {
        assert_eq!(parse_stream_preamble(&video_stream_preamble(42)), Ok(42));
        let mut other = video_stream_preamble(1);
        other[0] = b'A';
        assert_eq!(parse_stream_preamble(&other), Err(WireError::UnknownStream(b'A')));
    }
}
