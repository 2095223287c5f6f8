//! The program: turns the command line into a run (print the fingerprint, list devices,
//! listen or call), checks the sound devices, starts capture and the window, and runs the
//! peer on a tokio runtime beside the window's main thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::call::{CallContext, CallSettings};
use crate::cli::{Cli, MediaOptions};
use crate::media::audio::device::{Direction, list_devices, probe};
use crate::media::audio::microphone::{AudioSource, MicPlan};
use crate::media::audio::speaker::{AudioSink, SpeakerPlan};
use crate::media::audio::wav::read_wav;
use crate::media::camera::list_cameras;
use crate::media::codec::{EncoderSettings, default_bitrate_kbps};
use crate::media::display::{display_available, run_window};
use crate::media::source::{CaptureOutputs, source_fps, start_capture};
use crate::net::identity::Identity;
use crate::net::known_peers::KnownPeers;
use crate::net::raw;
use crate::net::raw::call::RawLimits;
use crate::net::raw::pickle_read::PictureLimits;
use crate::net::trust::TrustPolicy;
use crate::peer::{self, Trust};
use crate::stats::JsonLines;
use crate::view::{MediaState, View};

/// A raw frame begun must be complete within this, plus its length at the minimum rate.
const RAW_STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Exit status after a second Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED_EXIT: i32 = 130;

/// Seconds between keyframes nobody asked for.
const KEYFRAME_INTERVAL_SECS: u32 = 10;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let certs = &cli.call_options.certs;
    if cli.fingerprint {
        let identity = Identity::load_or_create(certs)?;
        println!("{}", identity.fingerprint());
        return Ok(());
    }
    if cli.reachability {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
        for line in runtime.block_on(crate::reachability::report(cli.port_map.methods())) {
            println!("{line}");
        }
        return Ok(());
    }
    if cli.list_devices {
        let fps = cli.media.fps.unwrap_or(30);
        let cameras = list_cameras(cli.media.size, fps)?;
        if cameras.is_empty() {
            println!("no cameras found (use --source test for the test pattern)");
        }
        for camera in cameras {
            println!("camera {}: {}", camera.index, camera.name);
            for format in camera.formats {
                println!("    {format}");
            }
            match camera.chosen {
                Some(chosen) => println!(
                    "    uses {chosen} for {}x{}@{fps} (cheapest to convert)",
                    cli.media.size.0, cli.media.size.1
                ),
                None => println!("    offers no format chat can use"),
            }
        }
        let (microphones, speakers) = list_devices();
        if microphones.is_empty() && speakers.is_empty() {
            println!("no sound devices found (use --audio-source tone and --audio-sink PATH.wav to test)");
        }
        for (i, name) in microphones.iter().enumerate() {
            println!("microphone {i}: {name}");
        }
        for (i, name) in speakers.iter().enumerate() {
            println!("speaker {i}: {name}");
        }
        return Ok(());
    }

    // Raw mode has no identity: it is the Python streamer's unauthenticated format.
    let trust = if cli.raw.raw {
        None
    } else {
        let identity = Identity::load_or_create(certs).context("loading this peer's identity (--certs)")?;
        // Each call reads known_peers afresh; reading it now stops chat on an unsafe or
        // unreadable file before the camera starts and before a listener waits.
        KnownPeers::load(certs)?;
        Some(Arc::new(Trust {
            identity,
            certs_dir: certs.clone(),
            policy: TrustPolicy {
                pinned: cli.trust.peer,
                accept_new: cli.trust.accept_new,
                interactive: crate::prompt::interactive(),
            },
            name: cli.trust.name.clone(),
        }))
    };
    let media = &cli.media;
    // Sound options are checked before the camera opens. Raw mode is the Python
    // streamer's format: pictures only.
    let sound = if cli.raw.raw { SoundPlan::none() } else { plan_audio(media)? };
    let fps = source_fps(&media.source, media.fps);
    let outputs = CaptureOutputs::default();
    let view = Arc::new(View::new(
        Arc::clone(&outputs.preview),
        MediaState { muted: media.mute, camera_off: media.camera_off },
    ));
    let capture = start_capture(media.source.clone(), media.size, fps, outputs.clone(), view.watch_local_media())
        .context("cannot start the video source")?;
    eprintln!("sending {} at {fps} fps", capture.description);
    if !sound.description.is_empty() {
        eprintln!("{}", sound.description);
    }
    let options = &cli.call_options;
    let stats_json = options
        .stats_json
        .as_deref()
        .map(|path| JsonLines::create(path).with_context(|| format!("cannot write --stats-json {}", path.display())))
        .transpose()?
        .map(|json| Arc::new(Mutex::new(json)));
    // What the source really gives (a file its own size, a camera its nearest): the hello
    // announces it, and the adaptation never sends larger.
    let size = capture.size;
    let ctx = Arc::new(CallContext {
        settings: CallSettings {
            size,
            encoder: EncoderSettings {
                fps,
                bitrate_kbps: media.bitrate.unwrap_or_else(|| default_bitrate_kbps(size.0, size.1, fps)),
                keyframe_interval_secs: KEYFRAME_INTERVAL_SECS,
            },
            duration: options.duration.map(Duration::from_secs_f64),
            record: options.record.clone(),
            status_line: !options.quiet,
            microphone: sound.microphone,
            speaker: sound.speaker,
            echo_cancel: sound.echo_cancel,
            adapt: !media.no_adapt,
        },
        encoder_input: Arc::clone(&outputs.encoder),
        view: Arc::clone(&view),
        stats_json,
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (listen, call, once, port_map) = (cli.listen_addr(), cli.call.clone(), options.once, cli.port_map.methods());
    let raw_limits = cli.raw.raw.then(|| RawLimits {
        max_frame_bytes: cli.raw.max_frame_bytes(),
        picture: PictureLimits { max_width: cli.raw.raw_max_size.0, max_height: cli.raw.raw_max_size.1 },
        stall_timeout: RAW_STALL_TIMEOUT,
    });
    let want_window = !options.headless && display_available();
    if !options.headless && !want_window {
        eprintln!("no display found (DISPLAY is not set): running headless");
    }
    let peer_view = Arc::clone(&view);
    let peer_run = async move {
        let quit_view = Arc::clone(&peer_view);
        tokio::spawn(async move {
            // The first Ctrl-C (or SIGTERM) hangs up (within a second, whatever the peer
            // does); a second one does not wait for that.
            if interrupted_or_terminated().await {
                quit_view.request_quit();
            }
            if interrupted_or_terminated().await {
                eprintln!("chat: interrupted again: exiting now");
                std::process::exit(INTERRUPTED_EXIT);
            }
        });
        let result = match (listen, &call, raw_limits, trust) {
            (Some(addr), _, Some(limits), _) => raw::peer::listen(addr, ctx, limits, once).await,
            (None, Some(peer), Some(limits), _) => raw::peer::call(peer, ctx, limits, started).await,
            (Some(addr), _, None, Some(trust)) => peer::listen(addr, trust, ctx, once, port_map).await,
            (None, Some(peer), None, Some(trust)) => peer::call(peer, trust, ctx, started).await,
            _ => unreachable!("clap requires a mode; QUIC has an identity"),
        };
        peer_view.set_finished();
        result
    };

    let result = if want_window {
        let peer_thread = std::thread::Builder::new()
            .name("peer".into())
            .spawn(move || runtime.block_on(peer_run))
            .context("starting the peer thread")?;
        if let Err(e) = run_window(&view, (960, 540)) {
            eprintln!("chat: {e}; carrying on headless");
            while !view.finished() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        view.request_quit();
        peer_thread.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the peer thread panicked")))
    } else {
        runtime.block_on(peer_run)
    };
    drop(capture);
    result
}

/// Resolves on the first Ctrl-C, or SIGTERM where there is one: both hang up and leave
/// cleanly (the router's port mapping removed). Whether a signal came.
async fn interrupted_or_terminated() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            return tokio::select! {
                interrupted = tokio::signal::ctrl_c() => interrupted.is_ok(),
                terminated = terminate.recv() => terminated.is_some(),
            };
        }
    }
    tokio::signal::ctrl_c().await.is_ok()
}

/// What every call of this run does with sound.
struct SoundPlan {
    microphone: Option<MicPlan>,
    speaker: SpeakerPlan,
    echo_cancel: bool,
    /// The line that tells the user (empty in raw mode).
    description: String,
}

impl SoundPlan {
    fn none() -> Self {
        Self { microphone: None, speaker: SpeakerPlan::Discard, echo_cancel: false, description: String::new() }
    }
}

/// Checks the sound options before any call: a device asked for by name must be there;
/// `auto` falls back to no sound with one line saying so.
fn plan_audio(media: &MediaOptions) -> anyhow::Result<SoundPlan> {
    let (microphone, sending) = match &media.audio_source {
        AudioSource::Auto => match probe(Direction::Input, media.mic.as_deref()) {
            Ok(name) => (Some(MicPlan::Device(media.mic.clone())), format!("microphone \"{name}\"")),
            Err(e) => {
                eprintln!("no microphone: {e}; sending no sound");
                (None, "nothing".into())
            }
        },
        AudioSource::Mic => {
            let name = probe(Direction::Input, media.mic.as_deref()).context("--audio-source mic")?;
            (Some(MicPlan::Device(media.mic.clone())), format!("microphone \"{name}\""))
        }
        AudioSource::Tone(hz) => (Some(MicPlan::Tone(*hz)), format!("a {hz} Hz tone")),
        AudioSource::Wav(path) => {
            let samples = read_wav(path).context("--audio-source")?;
            (Some(MicPlan::Samples(samples.into())), path.display().to_string())
        }
        AudioSource::None => (None, "nothing".into()),
    };
    let (speaker, playing) = match &media.audio_sink {
        AudioSink::Auto => match probe(Direction::Output, media.speaker.as_deref()) {
            Ok(name) => (SpeakerPlan::Device(media.speaker.clone()), format!("speaker \"{name}\"")),
            Err(e) => {
                eprintln!("no speaker: {e}; the peer's sound will not play");
                (SpeakerPlan::Discard, "nowhere".into())
            }
        },
        AudioSink::Speaker => {
            let name = probe(Direction::Output, media.speaker.as_deref()).context("--audio-sink speaker")?;
            (SpeakerPlan::Device(media.speaker.clone()), format!("speaker \"{name}\""))
        }
        AudioSink::Wav(path) => (SpeakerPlan::Wav(path.clone()), path.display().to_string()),
        AudioSink::None => (SpeakerPlan::Discard, "nowhere".into()),
    };
    // Echo comes back through the air, so only a real microphone needs it cancelled.
    let echo_cancel = !media.no_echo_cancel && matches!(microphone, Some(MicPlan::Device(_)));
    let mut notes = String::new();
    if media.mute {
        notes.push_str(" (muted: M unmutes)");
    }
    if echo_cancel {
        notes.push_str(" with echo cancelled");
    }
    let description = format!("sound: sending {sending}{notes}, playing the peer's to {playing}");
    Ok(SoundPlan { microphone, speaker, echo_cancel, description })
}
