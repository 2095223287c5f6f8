//! One call on an established connection: starts the stages (video encoder, streams and
//! decoder; audio sender, datagrams and playout; control stream, stats), ties their
//! lifetimes together, and ends them all on hang-up, when the peer goes away, or when the
//! duration runs out.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quinn::Connection;
use tokio::sync::{mpsc, watch};

use crate::adapt::REPORT_INTERVAL_US;
use crate::adapt::controller::RateController;
use crate::adapt::cpu_load::CpuLoad;
use crate::adapt::keyframes::Keyframes;
use crate::adapt::ladder::rungs;
use crate::adapt::liveness::Liveness;
use crate::adapt::policy::PolicyConfig;
use crate::adapt::receive_meter::ReceiveMeter;
use crate::adaptation::{Adaptation, Shown};
use crate::latest::Latest;
use crate::media::adaptive_encoder::Target;
use crate::media::audio::echo::EchoCanceller;
use crate::media::audio::microphone::MicPlan;
use crate::media::audio::playout::AudioPlayout;
use crate::media::audio::sender::AudioSender;
use crate::media::audio::speaker::SpeakerPlan;
use crate::media::codec::EncoderSettings;
use crate::media::decode_loop::DecodeLoop;
use crate::media::encode_loop::EncodeLoop;
use crate::media::frame::SharedFrame;
use crate::media::lip_sync::LipSync;
use crate::media::y4m::Y4mWriter;
use crate::net::clock::{ClockSync, now_us};
use crate::net::control::{self, ControlError, ControlStream};
use crate::net::datagrams::{DatagramsInError, Feedback, receive_datagrams, send_audio};
use crate::net::endpoint::{CloseCode, Ending};
use crate::net::wire::ControlMessage;
use crate::net::{video_in, video_out};
use crate::stats::{CallStats, JsonLines, Report, Reporter};
use crate::view::View;

/// How long a hanging-up peer waits for the other to close after saying so. Then it closes
/// anyway: the close frame carries the hang-up too, and nothing the peer does (withholding
/// flow control credit, flooding) can hold a hang-up longer.
const HANG_UP_GRACE: Duration = Duration::from_millis(300);

/// Settings that hold for every call of this run.
#[derive(Debug, Clone)]
pub struct CallSettings {
    pub size: (usize, usize),
    pub encoder: EncoderSettings,
    pub duration: Option<Duration>,
    pub record: Option<PathBuf>,
    /// Print the once-a-second status line.
    pub status_line: bool,
    /// Where this peer's sound comes from (`None`: it sends none).
    pub microphone: Option<MicPlan>,
    /// Where the peer's sound goes.
    pub speaker: SpeakerPlan,
    /// Take the peer's sound, as the microphone hears it from the speaker, out again.
    pub echo_cancel: bool,
    /// Follow what the path carries (`--no-adapt` turns it off: the fixed bitrate and size
    /// of old, for comparison).
    pub adapt: bool,
}

/// Which end of the call this peer is.
pub enum CallSide {
    Listener,
    /// The caller, with its endpoint: it moves to a fresh socket when the link goes silent.
    Caller(quinn::Endpoint),
}

/// What a call needs from the rest of the program.
pub struct CallContext {
    pub settings: CallSettings,
    /// Captured pictures for the encoder.
    pub encoder_input: Arc<Latest<SharedFrame>>,
    pub view: Arc<View>,
    pub stats_json: Option<Arc<Mutex<JsonLines>>>,
}

/// A call could not run.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The encoder or decoder could not start.
    #[error(transparent)]
    Codec(#[from] crate::media::codec::CodecError),
    /// `--record` could not be opened.
    #[error(transparent)]
    Record(#[from] crate::media::y4m::Y4mError),
}

/// How a call went.
#[derive(Debug)]
pub struct CallOutcome {
    pub ending: Ending,
    pub summary: Report,
}

impl CallContext {
    /// Shows one second's figures: status line, window title, `--stats-json`.
    /// The peer went quiet: say so now, in the window and on the status line.
    fn show_reconnecting(&self) {
        if self.settings.status_line {
            eprintln!("reconnecting…");
        }
        self.view.set_figures("reconnecting…");
    }

    pub fn report(&self, report: &Report) {
        let line = report.status_line();
        if self.settings.status_line {
            eprintln!("{line}");
        }
        self.view.set_figures(line);
        self.write_json(report);
    }

    /// Writes one line to `--stats-json`, if asked for.
    pub fn write_json<T: serde::Serialize>(&self, value: &T) {
        if let Some(json) = &self.stats_json
            && let Err(e) = json.lock().unwrap_or_else(|e| e.into_inner()).write(value)
        {
            tracing::warn!("--stats-json: {e}");
        }
    }

    /// Resolves when this side should hang up: the user quit, or `--duration` ran out.
    pub async fn local_hang_up(&self) {
        let deadline = async {
            match self.settings.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.view.wait_for_quit() => {}
            _ = deadline => {}
        }
    }

    /// Closes the books on a call: the summary goes to `--stats-json`, the window forgets it.
    pub fn finish(&self, stats: &CallStats, ending: Ending, rtt: Option<Duration>) -> CallOutcome {
        self.view.set_in_call(false);
        let summary = Reporter::summary(stats, rtt);
        self.write_json(&summary);
        CallOutcome { ending, summary }
    }

    /// A ticker for `report`: first tick one second from now.
    pub fn report_ticker() -> tokio::time::Interval {
        tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1))
    }

    /// Runs a call until it ends. `started` is when the user asked for it; `established`
    /// runs once both sides have said hello (a call that fails before that changes nothing).
    pub async fn run(
        &self,
        conn: Connection,
        side: CallSide,
        started: Instant,
        safety_code: Option<String>,
        established: impl FnOnce(),
    ) -> Result<CallOutcome, CallError> {
        let s = &self.settings;
        // Both sides have decided to talk: let the peer's streams in.
        crate::net::endpoint::open_for_call(&conn);
        let stats = Arc::new(CallStats::new(started));
        stats.set_safety_code(safety_code);
        let hello =
            ControlMessage::Hello { width: s.size.0 as u16, height: s.size.1 as u16, fps: s.encoder.fps as u16 };
        let (control, peer_hello) =
            match ControlStream::establish(&conn, matches!(side, CallSide::Caller(_)), hello).await {
                Ok(established) => established,
                Err(e) => {
                    let ending = match (&e, conn.close_reason()) {
                        (_, Some(reason)) => Ending::of(&reason),
                        (ControlError::Connection(reason), None) => Ending::of(reason),
                        _ => {
                            conn.close(CloseCode::ProtocolError.code(), e.to_string().as_bytes());
                            Ending::Other(e.to_string())
                        }
                    };
                    return Ok(self.finish(&stats, ending, None));
                }
            };
        tracing::info!(?peer_hello, "call established");
        established();
        let (peer_fps, peer_size) = match peer_hello {
            ControlMessage::Hello { width, height, fps } => {
                (Some(u32::from(fps)), Some((usize::from(width), usize::from(height))))
            }
            _ => (None, None),
        };
        self.view.set_in_call(true);

        let stop = Arc::new(AtomicBool::new(false));
        let keyframes = Arc::new(Mutex::new(Keyframes::default()));
        let clock = Arc::new(Mutex::new(ClockSync::new()));
        let lip_sync = Arc::new(LipSync::new());
        let mut local_media = self.view.watch_local_media();

        // One picture waits for the network at most: when the writer is still busy with the
        // last one, the encoder skips the next before encoding it.
        let (packets_tx, packets_rx) = mpsc::channel(1);
        // The rate controller's targets for the encoder; with --no-adapt the first one holds.
        let (retarget, targets) = watch::channel(Target::initial(s.encoder));
        let (restart, restarts) = watch::channel(0u64);
        let (link_back, link_returns) = watch::channel(0u64);
        let controller = s.adapt.then(|| {
            RateController::new(PolicyConfig {
                ceiling_kbps: s.encoder.bitrate_kbps,
                max_width: s.size.0 as u32,
                max_height: s.size.1 as u32,
                camera_fps: s.encoder.fps,
            })
        });
        let encoder = EncodeLoop {
            settings: s.encoder,
            targets,
            input: Arc::clone(&self.encoder_input),
            media: self.view.watch_local_media(),
            output: packets_tx,
            keyframes: Arc::clone(&keyframes),
            stats: Arc::clone(&stats),
            stop: Arc::clone(&stop),
            cpu: s.adapt.then(|| CpuLoad::new(rungs(s.size.0 as u32, s.size.1 as u32, s.encoder.fps))),
        }
        .spawn()?;
        let (video_pacing, pacing_rx) = watch::channel(None);
        let sender = tokio::spawn(video_out::send_video(
            conn.clone(),
            packets_rx,
            restarts,
            pacing_rx,
            Arc::clone(&keyframes),
            Arc::clone(&stats),
        ));

        let echo = s.echo_cancel.then(|| Arc::new(EchoCanceller::new()));
        let (audio_tx, audio_rx) = mpsc::channel(16);
        let audio_sender = s.microphone.clone().map(|plan| {
            AudioSender {
                plan,
                media: self.view.watch_local_media(),
                echo: echo.clone(),
                output: audio_tx,
                stats: Arc::clone(&stats),
                stop: Arc::clone(&stop),
            }
            .spawn()
        });
        let (audio_redundancy, redundancy_rx) = watch::channel(false);
        let audio_out = tokio::spawn(send_audio(conn.clone(), audio_rx, redundancy_rx, Arc::clone(&stats)));
        let (heard_tx, heard_rx) = std::sync::mpsc::sync_channel(64);
        let playout = AudioPlayout {
            input: heard_rx,
            sink: s.speaker.clone(),
            clock: Arc::clone(&clock),
            stats: Arc::clone(&stats),
            lip_sync: Arc::clone(&lip_sync),
            echo,
            stop: Arc::clone(&stop),
        }
        .spawn();
        let (feedback_tx, mut feedback_rx) = mpsc::channel(8);
        let mut datagrams_in = tokio::spawn(receive_datagrams(conn.clone(), heard_tx, feedback_tx, Arc::clone(&stats)));
        let (probes_sent, mut probes_sent_rx) = mpsc::channel(2);

        let (control_tx, control_rx) = control::write_queue();
        let hang_up_tx = control_tx.clone();
        let ping_pong_tx = control_tx.clone();
        let media_tx = control_tx.clone();
        let media_message =
            |m: crate::view::MediaState| ControlMessage::MediaState { muted: m.muted, camera_off: m.camera_off };
        let _ = media_tx.try_send(media_message(*local_media.borrow_and_update()));
        // Whatever the peer sends that breaks the protocol ends the call, with the reason.
        let (violations_tx, mut violations_rx) = mpsc::channel(1);
        let refused_tx = violations_tx.clone();
        let (received_tx, received_rx) = std::sync::mpsc::sync_channel(8);
        let record = s.record.as_deref().map(|path| Y4mWriter::create(path, s.encoder.fps)).transpose()?;
        let decoder = DecodeLoop {
            input: received_rx,
            output: Arc::clone(&self.view.remote),
            request_keyframe: Box::new(move || {
                let _ = control_tx.try_send(ControlMessage::KeyframeRequest);
            }),
            link_back: link_returns,
            refuse: Box::new(move |reason| {
                let _ = refused_tx.try_send(format!("refused the peer's video: {reason}"));
            }),
            clock: Arc::clone(&clock),
            stats: Arc::clone(&stats),
            record,
            peer_fps,
            peer_size,
            lip_sync,
            stop: Arc::clone(&stop),
        }
        .spawn()?;
        let meter = Arc::new(Mutex::new(ReceiveMeter::new()));
        let receiver = tokio::spawn(video_in::receive_video(
            conn.clone(),
            received_tx,
            Arc::clone(&stats),
            Arc::clone(&meter),
            violations_tx.clone(),
        ));
        let (peer_view, peer_stats) = (Arc::clone(&self.view), Arc::clone(&stats));
        let on_peer_media = move |state: crate::view::MediaState| {
            peer_view.set_peer_media(state);
            peer_stats.peer_muted.store(state.muted, Ordering::Relaxed);
            peer_stats.peer_camera_off.store(state.camera_off, Ordering::Relaxed);
        };
        let mut adaptation = Adaptation {
            controller,
            liveness: Liveness::default(),
            meter,
            retarget,
            restart,
            link_back,
            audio_redundancy,
            video_pacing,
            probes_sent,
            stats: Arc::clone(&stats),
            datagrams_seen: 0,
            rebinds: match side {
                CallSide::Caller(endpoint) => Some(endpoint),
                CallSide::Listener => None,
            },
        };
        adaptation.start(now_us(), &conn);
        let mut control =
            tokio::spawn(control.run(ping_pong_tx, control_rx, Arc::clone(&keyframes), clock, on_peer_media));
        let mut adapt_ticker = tokio::time::interval(Duration::from_micros(REPORT_INTERVAL_US));
        let mut datagrams_in_done = false;
        let mut media_unsent = false;

        let mut reporter = Reporter::new(&stats);
        let mut ticker = Self::report_ticker();
        let hang_up = self.local_hang_up();
        tokio::pin!(hang_up);
        let ending = loop {
            tokio::select! {
                reason = conn.closed() => break Ending::of(&reason),
                _ = &mut hang_up => {
                    // Stop sending pictures, say it on the control stream (retransmitted until
                    // it arrives), give the peer a moment to close, then close anyway.
                    stats.media_ended();
                    stop.store(true, Ordering::Relaxed);
                    sender.abort();
                    audio_out.abort();
                    let _ = hang_up_tx.try_send(ControlMessage::HangUp);
                    let _ = tokio::time::timeout(HANG_UP_GRACE, conn.closed()).await;
                    conn.close(CloseCode::HangUp.code(), b"hang-up");
                    break Ending::Local;
                }
                result = &mut control => {
                    match result {
                        Ok(Err(ControlError::Wire(e))) => {
                            let reason = format!("the peer broke the protocol: {e}");
                            conn.close(CloseCode::ProtocolError.code(), reason.as_bytes());
                            break Ending::ProtocolViolation(reason);
                        }
                        Ok(Ok(())) => {
                            conn.close(CloseCode::HangUp.code(), b"hang-up");
                            break Ending::PeerHungUp;
                        }
                        _ => break conn.close_reason().map_or(Ending::Local, |r| Ending::of(&r)),
                    }
                }
                Ok(()) = local_media.changed() => {
                    let state = *local_media.borrow_and_update();
                    media_unsent = media_tx.try_send(media_message(state)).is_err();
                }
                result = &mut datagrams_in, if !datagrams_in_done => {
                    datagrams_in_done = true;
                    if let Ok(Err(e)) = result {
                        let _ = violations_tx.try_send(match e {
                            DatagramsInError::Wire(e) => format!("the peer broke the protocol: {e}"),
                            flood => flood.to_string(),
                        });
                    }
                }
                Some(reason) = violations_rx.recv() => {
                    conn.close(CloseCode::ProtocolError.code(), reason.as_bytes());
                    break Ending::ProtocolViolation(reason);
                }
                Some(feedback) = feedback_rx.recv() => match feedback {
                    Feedback::Report(report) => adaptation.on_report(now_us(), &report),
                    Feedback::ProbeResult(result) => adaptation.on_probe_result(now_us(), result, &conn),
                },
                Some(sent) = probes_sent_rx.recv() => adaptation.on_probe_sent(now_us(), sent, &conn),
                _ = adapt_ticker.tick() => {
                    if adaptation.on_tick(now_us(), &conn) == Shown::Reconnecting {
                        self.show_reconnecting();
                    }
                }
                _ = ticker.tick() => {
                    // A switch that found the control queue full is sent again.
                    if media_unsent {
                        media_unsent = media_tx.try_send(media_message(*local_media.borrow())).is_err();
                    }
                    self.report(&reporter.tick(&stats, Some(conn.rtt())));
                }
            }
        };
        stats.media_ended();

        stop.store(true, Ordering::Relaxed);
        control.abort();
        sender.abort();
        receiver.abort();
        audio_out.abort();
        datagrams_in.abort();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = encoder.join();
            let _ = decoder.join();
            let _ = playout.join();
            if let Some(audio_sender) = audio_sender {
                let _ = audio_sender.join();
            }
        })
        .await;
        Ok(self.finish(&stats, ending, Some(conn.rtt())))
    }
}
