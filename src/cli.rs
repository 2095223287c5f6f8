//! The command line: what `chat --help` shows. Every option here is also in the README.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use clap::{ArgGroup, Parser};

use crate::media::audio::microphone::AudioSource;
use crate::media::audio::speaker::AudioSink;
use crate::media::camera_buffer::PixelLayout;
use crate::media::pattern;
use crate::net::identity::Fingerprint;
use crate::net::known_peers::check_name;
use crate::net::port_map::{Method, Methods};

/// The UDP (QUIC) port a listener uses unless told otherwise.
pub const DEFAULT_PORT: u16 = 1254;

/// Peer-to-peer video calls over QUIC: `chat --listen` on one machine, `chat --call HOST` on the other.
#[derive(Debug, Parser)]
#[command(version, about, after_help = "Keys in the window: Esc or Q hangs up.\nLogs: RUST_LOG=debug chat ...")]
#[command(group(ArgGroup::new("mode").required(true).args(["listen", "call", "fingerprint", "list_devices", "reachability"])))]
pub struct Cli {
    /// Wait for calls on ADDR: an IP, IP:PORT or a bare PORT [default: [::]:1254, IPv6 and IPv4 (0.0.0.0:1254 where the system has no IPv6); with --raw 127.0.0.1:1254]
    #[arg(long, value_name = "ADDR", num_args = 0..=1, value_parser = parse_listen_addr)]
    pub listen: Option<Option<ListenAddr>>,

    /// Call a listening peer: HOST, HOST:PORT, IPv4 or IPv6 ([::1]:1254)
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_peer)]
    pub call: Option<PeerAddress>,

    /// Print this peer's identity fingerprint and exit
    #[arg(long)]
    pub fingerprint: bool,

    /// List cameras (with their formats), microphones and speakers, then exit
    #[arg(long)]
    pub list_devices: bool,

    /// Show how callers can reach this machine (its addresses, whether the router maps ports, the public address), then exit
    #[arg(long)]
    pub reachability: bool,

    #[command(flatten)]
    pub port_map: PortMapOptions,

    #[command(flatten)]
    pub media: MediaOptions,

    #[command(flatten)]
    pub call_options: CallOptions,

    #[command(flatten)]
    pub trust: TrustOptions,

    #[command(flatten)]
    pub raw: RawOptions,
}

/// Asking the router to forward the listening port.
#[derive(Debug, clap::Args)]
pub struct PortMapOptions {
    /// How a listener asks the router to forward its port: auto (PCP, NAT-PMP and UPnP-IGD, the first that answers), pcp, nat-pmp or upnp
    #[arg(long, value_name = "METHOD", default_value = "auto", value_parser = parse_port_map)]
    pub port_map: Methods,

    /// Do not ask the router to forward the listening port
    #[arg(long, conflicts_with = "port_map")]
    pub no_port_map: bool,
}

impl PortMapOptions {
    /// The protocols to try, or `None` when mapping is off.
    pub fn methods(&self) -> Option<Methods> {
        (!self.no_port_map).then_some(self.port_map)
    }
}

fn parse_port_map(text: &str) -> Result<Methods, String> {
    Ok(match text {
        "auto" => Methods::ALL,
        "pcp" => Methods::only(Method::Pcp),
        "nat-pmp" => Methods::only(Method::NatPmp),
        "upnp" => Methods::only(Method::Upnp),
        _ => return Err(format!("'{text}' is not a port mapping method: use auto, pcp, nat-pmp or upnp")),
    })
}

/// Whom to accept.
#[derive(Debug, clap::Args)]
pub struct TrustOptions {
    /// Accept only the peer with this fingerprint (64 hex digits; spaces and colons allowed)
    #[arg(long, value_name = "FINGERPRINT", value_parser = parse_fingerprint)]
    pub peer: Option<Fingerprint>,

    /// Accept and remember peers not seen before without asking (default: known peers only, or ask on a terminal)
    #[arg(long)]
    pub accept_new: bool,

    /// Name to remember a newly accepted peer by, in the known-peers file
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint, String> {
    Fingerprint::parse(text).ok_or_else(|| {
        format!("'{text}' is not a fingerprint: give the 64 hex digits `chat --fingerprint` prints on the peer")
    })
}

fn parse_name(text: &str) -> Result<String, String> {
    check_name(text).map(|()| text.to_string()).map_err(|e| e.to_string())
}

impl Cli {
    /// Where `--listen` binds: what was given, filled in with the mode's defaults.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        let given = self.listen?;
        let default_ip: IpAddr = if self.raw.raw { [127, 0, 0, 1].into() } else { Ipv6Addr::UNSPECIFIED.into() };
        Some(match given {
            None => SocketAddr::new(default_ip, DEFAULT_PORT),
            Some(ListenAddr::Port(port)) => SocketAddr::new(default_ip, port),
            Some(ListenAddr::Ip(ip)) => SocketAddr::new(ip, DEFAULT_PORT),
            Some(ListenAddr::Full(addr)) => addr,
        })
    }
}

/// Raw mode: the Python streamer's format over TCP.
#[derive(Debug, clap::Args)]
pub struct RawOptions {
    /// Speak the Python streamer's format over TCP (unencrypted, unauthenticated)
    #[arg(long)]
    pub raw: bool,

    /// Largest raw frame accepted, in bytes [default: the largest picture of --raw-max-size, plus 4 KiB]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(64..=1 << 34))]
    pub raw_max_bytes: Option<u64>,

    /// Largest raw picture accepted, WxH
    #[arg(long, value_name = "WxH", default_value = "3840x2160", value_parser = parse_max_size)]
    pub raw_max_size: (usize, usize),
}

impl RawOptions {
    /// The frame size limit: given, or the largest allowed picture plus pickle overhead.
    pub fn max_frame_bytes(&self) -> usize {
        let (w, h) = self.raw_max_size;
        self.raw_max_bytes.map_or(w * h * 3 + 4096, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// An address to listen on, as given: the missing parts depend on the mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Port(u16),
    Ip(IpAddr),
    Full(SocketAddr),
}

/// What this peer captures and sends.
#[derive(Debug, clap::Args)]
pub struct MediaOptions {
    /// Video source: auto (first camera, else the test pattern), camera, camera:N, test, a PATH.y4m file, or a camera-like PATH.mjpeg (JPEG pictures one after another) or PATH.yuyv (raw YUYV of --size) file; files loop
    #[arg(long, value_name = "SOURCE", default_value = "auto", value_parser = parse_source)]
    pub source: SourceSpec,

    /// Picture size to capture, and the largest to send (a slow link gets smaller), WxH (even numbers)
    #[arg(long, value_name = "WxH", default_value = "1280x720", value_parser = parse_size)]
    pub size: (usize, usize),

    /// Frames per second to capture and send (1-60) [default: 30, or a .y4m file's own rate]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=60))]
    pub fps: Option<u32>,

    /// The most video bitrate to send, kbit/s (50-20000): less when the link carries less [default: from the size, about 1900 for 1280x720 at 30 fps]
    #[arg(long, value_name = "KBPS", value_parser = clap::value_parser!(u32).range(50..=20000))]
    pub bitrate: Option<u32>,

    /// Sound to send: auto (the microphone if there is one, else none), mic, tone (440 Hz), tone:HZ, a PATH.wav file (loops), or none
    #[arg(long, value_name = "SOURCE", default_value = "auto", value_parser = clap::value_parser!(AudioSource))]
    pub audio_source: AudioSource,

    /// Where the peer's sound goes: auto (the speaker if there is one, else nowhere), speaker, a PATH.wav file, or none
    #[arg(long, value_name = "SINK", default_value = "auto", value_parser = clap::value_parser!(AudioSink))]
    pub audio_sink: AudioSink,

    /// Microphone to use, by name (or part of it) or number from --list-devices [default: the system's]
    #[arg(long, value_name = "NAME|N")]
    pub mic: Option<String>,

    /// Speaker to use, by name (or part of it) or number from --list-devices [default: the system's]
    #[arg(long, value_name = "NAME|N")]
    pub speaker: Option<String>,

    /// Do not cancel the echo of the peer's sound from the microphone (on by default with a microphone; off for tones and files)
    #[arg(long)]
    pub no_echo_cancel: bool,

    /// Send at a fixed bitrate, size and frame rate whatever the link carries (the old way, for comparison)
    #[arg(long)]
    pub no_adapt: bool,

    /// Start with the microphone muted (M in the window toggles it)
    #[arg(long)]
    pub mute: bool,

    /// Start with the camera off (V in the window toggles it)
    #[arg(long)]
    pub camera_off: bool,
}

/// How the call runs and reports.
#[derive(Debug, clap::Args)]
pub struct CallOptions {
    /// No window: also chosen automatically when there is no display
    #[arg(long)]
    pub headless: bool,

    /// Hang up after SECS seconds of call
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<f64>,

    /// Write the peer's decoded video, every frame shown, to PATH.y4m
    #[arg(long, value_name = "PATH.y4m")]
    pub record: Option<PathBuf>,

    /// Write one JSON object of figures per second to PATH, and a summary at the end
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,

    /// Do not print the once-a-second status line on stderr
    #[arg(long)]
    pub quiet: bool,

    /// With --listen: exit after the first call instead of waiting for the next
    #[arg(long)]
    pub once: bool,

    /// Directory holding this peer's identity and its known peers
    #[arg(long, value_name = "DIR", env = "CHAT_CERTS", default_value_os_t = default_certs_dir())]
    pub certs: PathBuf,
}

/// Where identities live unless `--certs` or `CHAT_CERTS` says otherwise: the user's
/// config directory, so the identity does not depend on the current directory.
pub fn default_certs_dir() -> PathBuf {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    config.join("chat").join("certs")
}

/// Where video comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// The first camera, or the test pattern if there is none.
    Auto,
    /// A camera: the first, or the one with this index.
    Camera(Option<u32>),
    /// The built-in test pattern.
    Test,
    /// A YUV4MPEG2 file, played in a loop.
    Y4m(PathBuf),
    /// A file of camera buffers (MJPEG or raw YUYV), played in a loop through the camera's
    /// conversion path.
    CameraFile(PathBuf, PixelLayout),
}

/// A peer to call, as typed and resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddress {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl PeerAddress {
    /// `host:port` (IPv6 in brackets): the key under which the peer is remembered.
    pub fn key(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn parse_listen_addr(text: &str) -> Result<ListenAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(ListenAddr::Port(port));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ListenAddr::Ip(ip));
    }
    text.parse::<SocketAddr>()
        .map(ListenAddr::Full)
        .map_err(|_| format!("'{text}' is not an address to listen on: give an IP, IP:PORT, [IPv6]:PORT or a PORT"))
}

fn parse_max_size(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("'{text}' is not a size: use WxH, as in 3840x2160");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (usize, usize) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(format!("{w}x{h}: each side must be between 1 and 16384"));
    }
    Ok((w, h))
}

fn parse_peer(text: &str) -> Result<PeerAddress, String> {
    let bad = || format!("'{text}' is not a peer address: give HOST, HOST:PORT, an IPv4 address or [IPv6]:PORT");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(PeerAddress { host: ip.to_string(), port: DEFAULT_PORT });
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(PeerAddress { host: addr.ip().to_string(), port: addr.port() });
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad())?),
        None => (text, DEFAULT_PORT),
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid || port == 0 {
        return Err(bad());
    }
    Ok(PeerAddress { host: host.to_ascii_lowercase(), port })
}

fn parse_source(text: &str) -> Result<SourceSpec, String> {
    match text {
        "auto" => Ok(SourceSpec::Auto),
        "camera" => Ok(SourceSpec::Camera(None)),
        "test" => Ok(SourceSpec::Test),
        _ => {
            if let Some(index) = text.strip_prefix("camera:") {
                return index
                    .parse()
                    .map(|i| SourceSpec::Camera(Some(i)))
                    .map_err(|_| format!("'{text}': camera index must be a number, as in camera:0"));
            }
            let lower = text.to_ascii_lowercase();
            if lower.ends_with(".y4m") {
                return Ok(SourceSpec::Y4m(PathBuf::from(text)));
            }
            if lower.ends_with(".mjpeg") || lower.ends_with(".mjpg") {
                return Ok(SourceSpec::CameraFile(PathBuf::from(text), PixelLayout::Mjpeg));
            }
            if lower.ends_with(".yuyv") {
                return Ok(SourceSpec::CameraFile(PathBuf::from(text), PixelLayout::Yuyv));
            }
            Err(format!(
                "'{text}' is not a source: use auto, camera, camera:N, test, or a file ending in .y4m, .mjpeg or .yuyv"
            ))
        }
    }
}

fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("'{text}' is not a size: use WxH, as in 1280x720");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (usize, usize) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if w % 2 != 0 || h % 2 != 0 {
        return Err(format!("{w}x{h}: width and height must be even (4:2:0 video)"));
    }
    let (min_w, min_h) = (pattern::MIN_WIDTH, pattern::MIN_HEIGHT);
    if w < min_w || h < min_h || w > 3840 || h > 2160 {
        return Err(format!("{w}x{h}: size must be between {min_w}x{min_h} and 3840x2160"));
    }
    Ok((w, h))
}

fn parse_duration(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => Ok(secs),
        _ => Err(format!("'{text}' is not a duration: give a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_addresses() {
        let listen = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["chat"], args].concat()).unwrap();
            cli.listen_addr().unwrap().to_string()
        };
        assert_eq!(listen(&["--listen"]), "[::]:1254");
        assert_eq!(listen(&["--listen", "9000"]), "[::]:9000");
        assert_eq!(listen(&["--listen", "0.0.0.0"]), "0.0.0.0:1254");
        assert_eq!(listen(&["--listen", "127.0.0.1"]), "127.0.0.1:1254");
        assert_eq!(listen(&["--listen", "::1"]), "[::1]:1254");
        assert_eq!(listen(&["--listen", "[::]:9000"]), "[::]:9000");
        // Raw mode is unencrypted: loopback unless an address is given.
        assert_eq!(listen(&["--listen", "--raw"]), "127.0.0.1:1254");
        assert_eq!(listen(&["--listen", "9000", "--raw"]), "127.0.0.1:9000");
        assert_eq!(listen(&["--listen", "0.0.0.0", "--raw"]), "0.0.0.0:1254");
        assert!(parse_listen_addr("nonsense").is_err());
    }

    #[test]
    fn raw_limits() {
        let cli = Cli::try_parse_from(["chat", "--listen", "--raw"]).unwrap();
        assert_eq!(cli.raw.max_frame_bytes(), 3840 * 2160 * 3 + 4096);
        let cli = Cli::try_parse_from(["chat", "--listen", "--raw", "--raw-max-size", "64x48"]).unwrap();
        assert_eq!(cli.raw.max_frame_bytes(), 64 * 48 * 3 + 4096);
        let cli = Cli::try_parse_from(["chat", "--listen", "--raw", "--raw-max-bytes", "1000"]).unwrap();
        assert_eq!(cli.raw.max_frame_bytes(), 1000);
        assert!(Cli::try_parse_from(["chat", "--listen", "--raw-max-size", "0x5"]).is_err());
    }

    #[test]
    fn peer_addresses() {
        let p = |s| parse_peer(s).unwrap();
        assert_eq!(p("192.0.2.7"), PeerAddress { host: "192.0.2.7".into(), port: 1254 });
        assert_eq!(p("Example.org:99").key(), "example.org:99");
        assert_eq!(p("::1").key(), "[::1]:1254");
        assert_eq!(p("[::1]:7").key(), "[::1]:7");
        for bad in ["", "host:", "host:0", "host:99999", "a b", "[::1", "x:y:z"] {
            assert!(parse_peer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_sizes_and_durations() {
        assert_eq!(parse_source("camera:2"), Ok(SourceSpec::Camera(Some(2))));
        assert_eq!(parse_source("clip.Y4M"), Ok(SourceSpec::Y4m("clip.Y4M".into())));
        assert!(parse_source("clip.mp4").unwrap_err().contains(".y4m"));
        assert_eq!(parse_source("cam.MJPG"), Ok(SourceSpec::CameraFile("cam.MJPG".into(), PixelLayout::Mjpeg)));
        assert_eq!(parse_source("cam.yuyv"), Ok(SourceSpec::CameraFile("cam.yuyv".into(), PixelLayout::Yuyv)));
        assert_eq!(parse_size("640x480"), Ok((640, 480)));
        assert!(parse_size("641x480").unwrap_err().contains("even"));
        assert!(parse_size("8x8").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn trust_options() {
        let hex = "ab".repeat(32);
        let cli = Cli::try_parse_from(["chat", "--call", "x", "--peer", &hex, "--name", "alice"]).unwrap();
        assert_eq!(cli.trust.peer, Fingerprint::parse(&hex));
        assert_eq!(cli.trust.name.as_deref(), Some("alice"));
        assert!(Cli::try_parse_from(["chat", "--call", "x", "--peer", "abcd"]).is_err());
        assert!(Cli::try_parse_from(["chat", "--call", "x", "--name", "a b"]).is_err());
    }

    #[test]
    fn exactly_one_mode() {
        assert!(Cli::try_parse_from(["chat"]).is_err());
        assert!(Cli::try_parse_from(["chat", "--listen", "--call", "x"]).is_err());
        assert!(Cli::try_parse_from(["chat", "--fingerprint"]).is_ok());
    }
}
