//! The control stream: one bidirectional stream, opened by the caller, that carries the
//! hellos, keyframe requests, the clock pings, the media switches and the hang-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::mpsc;

use super::clock::{ClockSync, now_us};
use super::wire::{ControlMessage, WireError};
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

/// The control stream's two halves.
pub struct ControlStream {
    send: SendStream,
    recv: RecvStream,
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
            let mut stream = Self { send, recv };
            stream.write(hello).await?;
            match stream.read().await? {
                Some(peer_hello @ ControlMessage::Hello { .. }) => Ok((stream, peer_hello)),
                Some(other) => Err(ControlError::NoHello(other)),
                None => Err(ControlError::Stream("closed before hello".into())),
            }
        };
        tokio::time::timeout(HELLO_TIMEOUT, exchange).await.map_err(|_| ControlError::Timeout(HELLO_TIMEOUT))?
    }

    async fn write(&mut self, message: ControlMessage) -> Result<(), ControlError> {
        self.send.write_all(&message.encode()).await.map_err(|e| ControlError::Stream(e.to_string()))
    }

    /// The next message; `None` when the peer finished the stream.
    async fn read(&mut self) -> Result<Option<ControlMessage>, ControlError> {
        let mut len = [0u8; 2];
        match self.recv.read_exact(&mut len).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
            Err(quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(e))) => return Err(e.into()),
            Err(e) => return Err(ControlError::Stream(e.to_string())),
        }
        let len = ControlMessage::check_length(u16::from_be_bytes(len))?;
        let mut body = vec![0u8; len];
        self.recv.read_exact(&mut body).await.map_err(|e| match e {
            quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(e)) => ControlError::Connection(e),
            e => ControlError::Stream(e.to_string()),
        })?;
        Ok(Some(ControlMessage::decode(&body)?))
    }

    /// Serves the stream until the connection ends: answers pings, measures the clock
    /// offset, passes keyframe requests both ways, reports the peer's media switches. `Ok` when the peer hung up.
    pub async fn run(
        mut self,
        mut outgoing: mpsc::Receiver<ControlMessage>,
        keyframe_wanted: Arc<AtomicBool>,
        clock: Arc<Mutex<ClockSync>>,
        on_peer_media: impl Fn(MediaState),
    ) -> Result<(), ControlError> {
        // A burst of pings at the start gives a clock offset before the first frames.
        let mut pings_sent = 0u32;
        let mut ping_timer = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                message = self.read() => match message? {
                    None => return Ok(()),
                    Some(ControlMessage::KeyframeRequest) => keyframe_wanted.store(true, Ordering::Relaxed),
                    Some(ControlMessage::Ping { sent_us }) => {
                        let received_us = now_us();
                        self.write(ControlMessage::Pong { ping_sent_us: sent_us, received_us, sent_us: now_us() }).await?;
                    }
                    Some(ControlMessage::Pong { ping_sent_us, received_us, sent_us }) => {
                        clock.lock().unwrap_or_else(|e| e.into_inner()).add_exchange(ping_sent_us, received_us, sent_us, now_us());
                    }
                    Some(ControlMessage::HangUp) => return Ok(()),
                    Some(ControlMessage::MediaState { muted, camera_off }) => on_peer_media(MediaState { muted, camera_off }),
                    Some(ControlMessage::Hello { .. }) => tracing::debug!("ignoring a second hello"),
                },
                Some(message) = outgoing.recv() => self.write(message).await?,
                _ = ping_timer.tick() => {
                    self.write(ControlMessage::Ping { sent_us: now_us() }).await?;
                    pings_sent += 1;
                    if pings_sent == 5 {
                        ping_timer = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
                    }
                }
            }
        }
    }
}
