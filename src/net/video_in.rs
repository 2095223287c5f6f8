//! Receiving video: accepts the peer's video streams, reads framed pictures (sizes checked
//! before allocating), stops streams of groups older than the newest, and passes pictures
//! to the decoder thread without ever waiting for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use quinn::{Connection, RecvStream, VarInt};
use tokio::sync::mpsc;

use super::clock::now_us;
use super::wire::{FRAME_HEADER_BYTES, FrameHeader, WireError, parse_stream_preamble};
use crate::adapt::receive_meter::{FrameArrival, ReceiveMeter};
use crate::media::decode_loop::ReceivedFrame;
use crate::stats::CallStats;

const STALE_GROUP: VarInt = VarInt::from_u32(1);

/// A video stream failed.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("{0}")]
    Read(#[from] quinn::ReadExactError),
}

/// Accepts video streams until the connection ends. A stream that breaks the wire format
/// is reported on `violations`: the call decides what follows.
pub async fn receive_video(
    conn: Connection,
    decoder: SyncSender<ReceivedFrame>,
    stats: Arc<CallStats>,
    meter: Arc<Mutex<ReceiveMeter>>,
    violations: mpsc::Sender<String>,
) {
    let newest_group = Arc::new(AtomicU64::new(0));
    while let Ok(stream) = conn.accept_uni().await {
        let (decoder, stats, newest, violations, meter) =
            (decoder.clone(), Arc::clone(&stats), Arc::clone(&newest_group), violations.clone(), Arc::clone(&meter));
        tokio::spawn(async move {
            match read_group(stream, &decoder, &stats, &meter, &newest).await {
                Ok(()) => {}
                Err(StreamError::Wire(e)) => {
                    let _ = violations.try_send(format!("the peer broke the protocol: {e}"));
                }
                Err(StreamError::Read(e)) => tracing::debug!("video stream ended: {e}"),
            }
        });
    }
}

async fn read_group(
    mut stream: RecvStream,
    decoder: &SyncSender<ReceivedFrame>,
    stats: &CallStats,
    meter: &Mutex<ReceiveMeter>,
    newest_group: &AtomicU64,
) -> Result<(), StreamError> {
    let mut preamble = [0u8; 9];
    stream.read_exact(&mut preamble).await?;
    let group = parse_stream_preamble(&preamble)?;
    newest_group.fetch_max(group, Ordering::Relaxed);
    loop {
        if group < newest_group.load(Ordering::Relaxed) {
            let _ = stream.stop(STALE_GROUP);
            return Ok(());
        }
        let mut header = [0u8; FRAME_HEADER_BYTES];
        match stream.read_exact(&mut header).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let header = FrameHeader::decode(&header)?;
        let mut data = vec![0u8; header.len as usize];
        stream.read_exact(&mut data).await?;
        let bytes = FRAME_HEADER_BYTES + data.len();
        stats.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
        let arrival = FrameArrival { arrival_us: now_us(), sent_us: header.sent_us, bytes, seq: header.seq };
        meter.lock().unwrap_or_else(|e| e.into_inner()).on_frame(arrival);
        let frame =
            ReceivedFrame { group, seq: header.seq, capture_us: header.capture_us, keyframe: header.keyframe, data };
        match decoder.try_send(frame) {
            Ok(()) => {}
            // The decoder is behind: this picture is lost, the decoder will notice the gap
            // and ask for a keyframe.
            Err(TrySendError::Full(_)) => tracing::debug!(seq = header.seq, "decoder behind, picture dropped"),
            Err(TrySendError::Disconnected(_)) => return Ok(()),
        }
    }
}
