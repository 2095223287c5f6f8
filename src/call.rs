//! One call on an established connection: starts the stages (encoder, video streams,
//! decoder, control stream, stats), ties their lifetimes together, and ends them all on
//! hang-up, when the peer goes away, or when the duration runs out.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quinn::Connection;
use tokio::sync::mpsc;

use crate::latest::Latest;
use crate::media::codec::EncoderSettings;
use crate::media::decode_loop::DecodeLoop;
use crate::media::encode_loop::spawn_encoder;
use crate::media::frame::SharedFrame;
use crate::media::y4m::Y4mWriter;
use crate::net::clock::ClockSync;
use crate::net::control::{ControlError, ControlStream};
use crate::net::endpoint::{CloseCode, Ending};
use crate::net::wire::ControlMessage;
use crate::net::{video_in, video_out};
use crate::stats::{CallStats, JsonLines, Report, Reporter};
use crate::view::View;

/// How long a hanging-up peer waits for the other to close after saying so.
const HANG_UP_GRACE: Duration = Duration::from_millis(1000);

/// Settings that hold for every call of this run.
#[derive(Debug, Clone)]
pub struct CallSettings {
    pub size: (usize, usize),
    pub encoder: EncoderSettings,
    pub duration: Option<Duration>,
    pub record: Option<PathBuf>,
    /// Print the once-a-second status line.
    pub status_line: bool,
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
    pub fn report(&self, report: &Report) {
        let line = report.status_line();
        if self.settings.status_line {
            eprintln!("{line}");
        }
        self.view.set_figures(line);
        self.write_json(report);
    }

    fn write_json(&self, report: &Report) {
        if let Some(json) = &self.stats_json
            && let Err(e) = json.lock().unwrap_or_else(|e| e.into_inner()).write(report)
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
        caller: bool,
        started: Instant,
        safety_code: Option<String>,
        established: impl FnOnce(),
    ) -> Result<CallOutcome, CallError> {
        let s = &self.settings;
        let stats = Arc::new(CallStats::new(started));
        stats.set_safety_code(safety_code);
        let hello =
            ControlMessage::Hello { width: s.size.0 as u16, height: s.size.1 as u16, fps: s.encoder.fps as u16 };
        let (control, peer_hello) = match ControlStream::establish(&conn, caller, hello).await {
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
        let peer_fps = match peer_hello {
            ControlMessage::Hello { fps, .. } => Some(u32::from(fps)),
            _ => None,
        };
        self.view.set_in_call(true);

        let stop = Arc::new(AtomicBool::new(false));
        let keyframe_wanted = Arc::new(AtomicBool::new(false));
        let clock = Arc::new(Mutex::new(ClockSync::new()));

        let (packets_tx, packets_rx) = mpsc::channel(4);
        let encoder = spawn_encoder(
            s.encoder,
            Arc::clone(&self.encoder_input),
            packets_tx,
            Arc::clone(&keyframe_wanted),
            Arc::clone(&stats),
            Arc::clone(&stop),
        )?;
        let sender = tokio::spawn(video_out::send_video(
            conn.clone(),
            packets_rx,
            Arc::clone(&keyframe_wanted),
            Arc::clone(&stats),
        ));

        let (control_tx, control_rx) = mpsc::channel(8);
        let hang_up_tx = control_tx.clone();
        let (refused_tx, mut refused_rx) = mpsc::channel(1);
        let (received_tx, received_rx) = std::sync::mpsc::sync_channel(8);
        let record = s.record.as_deref().map(|path| Y4mWriter::create(path, s.encoder.fps)).transpose()?;
        let decoder = DecodeLoop {
            input: received_rx,
            output: Arc::clone(&self.view.remote),
            request_keyframe: Box::new(move || {
                let _ = control_tx.try_send(ControlMessage::KeyframeRequest);
            }),
            refuse: Box::new(move |reason| {
                let _ = refused_tx.try_send(reason);
            }),
            clock: Arc::clone(&clock),
            stats: Arc::clone(&stats),
            record,
            peer_fps,
            stop: Arc::clone(&stop),
        }
        .spawn()?;
        let receiver = tokio::spawn(video_in::receive_video(conn.clone(), received_tx, Arc::clone(&stats)));
        let mut control = tokio::spawn(control.run(control_rx, Arc::clone(&keyframe_wanted), clock));

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
                    stop.store(true, Ordering::Relaxed);
                    sender.abort();
                    if hang_up_tx.send(ControlMessage::HangUp).await.is_ok() {
                        let _ = tokio::time::timeout(HANG_UP_GRACE, conn.closed()).await;
                    }
                    conn.close(CloseCode::HangUp.code(), b"hang-up");
                    break Ending::Local;
                }
                result = &mut control => {
                    match result {
                        Ok(Err(ControlError::Wire(e))) => {
                            conn.close(CloseCode::ProtocolError.code(), e.to_string().as_bytes());
                            break Ending::Other(format!("the peer broke the protocol: {e}"));
                        }
                        Ok(Ok(())) => {
                            conn.close(CloseCode::HangUp.code(), b"hang-up");
                            break Ending::PeerHungUp;
                        }
                        _ => break conn.close_reason().map_or(Ending::Local, |r| Ending::of(&r)),
                    }
                }
                Some(reason) = refused_rx.recv() => {
                    conn.close(CloseCode::ProtocolError.code(), reason.as_bytes());
                    break Ending::Other(format!("refused the peer's video: {reason}"));
                }
                _ = ticker.tick() => self.report(&reporter.tick(&stats, Some(conn.rtt()))),
            }
        };

        stop.store(true, Ordering::Relaxed);
        control.abort();
        sender.abort();
        receiver.abort();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = encoder.join();
            let _ = decoder.join();
        })
        .await;
        Ok(self.finish(&stats, ending, Some(conn.rtt())))
    }
}
