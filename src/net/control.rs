//! The control stream: one bidirectional stream, opened by the caller, that carries the
//! hellos, keyframe requests, the clock pings, the media switches and the hang-up.
//!
//! Reading is cancel-safe (a framer keeps whatever part of a message has arrived), and
//! writing is a task of its own behind a bounded queue, so a peer that withholds flow
//! control credit can stall only what we send it, never what we read or a hang-up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::mpsc;

use super::clock::{ClockSync, now_us};
use super::control_framing::{CHUNK_BYTES, ControlFramer};
use super::wire::{ControlMessage, WireError};
use crate::adapt::keyframes::{Keyframes, Reason};
use crate::view::MediaState;

/// How long the peer may take to say hello: long enough for a listener's user to be asked
/// whether to accept a new caller (the caller is ringing meanwhile).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// The control stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The peer sent something that is not a valid control message.
    #[error("bad control message from the peer: {0}")]
    Wire(#[from] WireError),
    /// The connection ended.
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    /// Reading or writing the stream failed.
    #[error("control stream: {0}")]
    Stream(String),
    /// The peer did not open the stream or say hello in time.
    #[error("the peer did not say hello within {0:?}")]
    Timeout(Duration),
    /// The peer's first message was not a hello.
    #[error("the peer's first message was {0:?}, not a hello")]
    NoHello(ControlMessage),
}

/// The control stream's send priority: above any video group's.
const CONTROL_PRIORITY: i32 = i32::MAX;

/// Messages waiting to be written. Beyond this the peer is not taking what we send, and
/// new messages (pongs, keyframe requests: all worth less late) are dropped.
const WRITE_QUEUE: usize = 32;

/// The control stream's two halves.
pub struct ControlStream {
    send: SendStream,
    reader: ControlReader,
}

/// The receiving half: the stream and what has arrived of the next message.
struct ControlReader {
    recv: RecvStream,
    framer: ControlFramer,
}

impl ControlReader {
    /// The next message; `None` when the peer finished the stream. Cancel-safe: quinn's
    /// `read` is, and a message that has partly arrived stays in the framer.
    async fn next(&mut self) -> Result<Option<ControlMessage>, ControlError> {
        let mut chunk = [0u8; CHUNK_BYTES];
        loop {
            if let Some(message) = self.framer.next_message()? {
                return Ok(Some(message));
            }
            match self.recv.read(&mut chunk).await {
                Ok(Some(n)) => self.framer.push(&chunk[..n]),
                Ok(None) if self.framer.is_mid_message() => {
                    return Err(ControlError::Stream("the peer ended the stream in the middle of a message".into()));
                }
                Ok(None) => return Ok(None),
                Err(quinn::ReadError::ConnectionLost(e)) => return Err(e.into()),
                Err(e) => return Err(ControlError::Stream(e.to_string())),
            }
        }
    }
}

/// Writes queued messages in order until the queue closes or the stream fails.
async fn write_queued(mut send: SendStream, mut queue: mpsc::Receiver<ControlMessage>) {
    while let Some(message) = queue.recv().await {
        if let Err(e) = send.write_all(&message.encode()).await {
            tracing::debug!("control stream: {e}");
            return;
        }
    }
}

/// The queue of messages to write: its sender for whoever has something to say (with
/// `try_send`, so nobody waits on a peer that is not reading), its receiver for `run`.
pub fn write_queue() -> (mpsc::Sender<ControlMessage>, mpsc::Receiver<ControlMessage>) {
    mpsc::channel(WRITE_QUEUE)
}

/// Queues a message for the writer; drops it when the peer is not taking what we send.
fn queue(writer: &mpsc::Sender<ControlMessage>, message: ControlMessage) {
    if let Err(mpsc::error::TrySendError::Full(message)) = writer.try_send(message) {
        tracing::debug!(?message, "the peer is not reading the control stream: message dropped");
    }
}

impl ControlStream {
    /// Opens (caller) or accepts (listener) the stream and exchanges hellos; returns the peer's.
    pub async fn establish(
        conn: &Connection,
        caller: bool,
        hello: ControlMessage,
    ) -> Result<(Self, ControlMessage), ControlError> {
        let exchange = async {
            let (send, recv) = if caller { conn.open_bi().await? } else { conn.accept_bi().await? };
            // Ahead of every video stream (their priority is their group number): a hang-up,
            // a keyframe request or a clock ping must not wait behind pictures on a full link.
            send.set_priority(CONTROL_PRIORITY).map_err(|e| ControlError::Stream(e.to_string()))?;
            let mut stream = Self { send, reader: ControlReader { recv, framer: ControlFramer::new() } };
            stream.send.write_all(&hello.encode()).await.map_err(|e| ControlError::Stream(e.to_string()))?;
            match stream.reader.next().await? {
                Some(peer_hello @ ControlMessage::Hello { .. }) => Ok((stream, peer_hello)),
                Some(other) => Err(ControlError::NoHello(other)),
                None => Err(ControlError::Stream("closed before hello".into())),
            }
        };
        tokio::time::timeout(HELLO_TIMEOUT, exchange).await.map_err(|_| ControlError::Timeout(HELLO_TIMEOUT))?
    }

    /// Serves the stream until the connection ends: answers pings, measures the clock
    /// offset, passes keyframe requests both ways, reports the peer's media switches. `Ok` when the peer hung up.
    /// `writer` and `queued` are the two ends of `write_queue()`: the rest of the call
    /// queues its messages on clones of `writer`.
    pub async fn run(
        self,
        writer: mpsc::Sender<ControlMessage>,
        queued: mpsc::Receiver<ControlMessage>,
        keyframes: Arc<Mutex<Keyframes>>,
        clock: Arc<Mutex<ClockSync>>,
        on_peer_media: impl Fn(MediaState),
    ) -> Result<(), ControlError> {
        let Self { send, mut reader } = self;
        // Ends when every `writer` is dropped, or when the connection closes.
        tokio::spawn(write_queued(send, queued));
        // A burst of pings at the start gives a clock offset before the first frames.
        let mut pings_sent = 0u32;
        let mut ping_timer = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                message = reader.next() => match message? {
                    None => return Ok(()),
                    Some(ControlMessage::KeyframeRequest) => {
                        let mut keyframes = keyframes.lock().unwrap_or_else(|e| e.into_inner());
                        if !keyframes.request(now_us(), Reason::PeerAsked) {
                            tracing::debug!("the peer asked for a keyframe: the last one, just sent, answers it");
                        }
                    }
                    Some(ControlMessage::Ping { sent_us }) => {
                        let received_us = now_us();
                        queue(&writer, ControlMessage::Pong { ping_sent_us: sent_us, received_us, sent_us: now_us() });
                    }
                    Some(ControlMessage::Pong { ping_sent_us, received_us, sent_us }) => {
                        clock.lock().unwrap_or_else(|e| e.into_inner()).add_exchange(ping_sent_us, received_us, sent_us, now_us());
                    }
                    Some(ControlMessage::HangUp) => return Ok(()),
                    Some(ControlMessage::MediaState { muted, camera_off }) => on_peer_media(MediaState { muted, camera_off }),
                    Some(ControlMessage::Hello { .. }) => tracing::debug!("ignoring a second hello"),
                },
                _ = ping_timer.tick() => {
                    queue(&writer, ControlMessage::Ping { sent_us: now_us() });
                    pings_sent += 1;
                    if pings_sent == 5 {
                        ping_timer = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
                    }
                }
            }
        }
    }
}
