//! Raw mode's lifecycle: listening on TCP (one call at a time; a second connection is
//! closed at once) or connecting out, then a raw call on the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

use super::call::{RawLimits, run_raw_call};
use super::deadline::Role;
use crate::call::{CallContext, CallOutcome};
use crate::cli::PeerAddress;
use crate::peer::judge;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a raw caller waits for the first picture, and between pictures.
const CALLER_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

const WARNING: &str =
    "raw mode: UNENCRYPTED and UNAUTHENTICATED; anyone on the network path can watch or alter the video";

fn blocking(stream: TcpStream) -> std::io::Result<std::net::TcpStream> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Serves raw calls on `addr`. With `once`, returns after the first, with its result.
pub async fn listen(addr: SocketAddr, ctx: Arc<CallContext>, limits: RawLimits, once: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on TCP {addr} (is something else using it? pick another port)"))?;
    let local = listener.local_addr()?;
    eprintln!("{WARNING}");
    println!("listening on {local} (TCP, raw mode)");
    ctx.view.set_headline(format!("waiting for a raw call on {local}"));
    let mut active: Option<tokio::task::JoinHandle<anyhow::Result<(SocketAddr, CallOutcome)>>> = None;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = accepted.context("accepting a TCP connection")?;
                if active.is_some() {
                    drop(stream);
                    println!("refused a raw call from {remote}: already in a call");
                    continue;
                }
                println!("raw call from {remote}");
                let ctx = Arc::clone(&ctx);
                active = Some(tokio::spawn(async move {
                    let started = Instant::now();
                    ctx.view.set_headline(format!("in a raw call with {remote}"));
                    Ok((remote, run_raw_call(blocking(stream)?, &ctx, limits, Role::Listener, started).await?))
                }));
            }
            finished = async { active.as_mut().expect("guarded").await }, if active.is_some() => {
                active = None;
                ctx.view.set_headline(format!("waiting for a raw call on {local}"));
                // Judged once the listener is free: whoever reads the verdict and calls is served.
                let result = finished
                    .context("call task failed")?
                    .and_then(|(remote, outcome)| judge(&outcome, &remote.to_string()));
                if once {
                    return result;
                }
                if let Err(e) = result {
                    eprintln!("chat: {e:#}");
                }
                if ctx.view.quit_requested() {
                    return Ok(());
                }
            }
            _ = ctx.view.wait_for_quit(), if active.is_none() => return Ok(()),
        }
    }
}

/// Connects to a raw-mode peer (a chat listener or the original server) and runs the call.
pub async fn call(
    peer: &PeerAddress,
    ctx: Arc<CallContext>,
    limits: RawLimits,
    started: Instant,
) -> anyhow::Result<()> {
    let key = peer.key();
    eprintln!("{WARNING}");
    ctx.view.set_headline(format!("calling {key} (raw)"));
    let connect = TcpStream::connect((peer.host.as_str(), peer.port));
    let stream = tokio::select! {
        stream = tokio::time::timeout(CONNECT_TIMEOUT, connect) => stream,
        _ = ctx.view.wait_for_quit() => return Ok(()),
    };
    let stream = match stream {
        Err(_) => anyhow::bail!("no answer from {key} within {} s", CONNECT_TIMEOUT.as_secs()),
        Ok(Err(e)) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot connect to {key} over TCP: is `chat --listen --raw` (or the Python server) running there?"
                )
            });
        }
        Ok(Ok(stream)) => stream,
    };
    println!("raw call to {key}");
    ctx.view.set_headline(format!("in a raw call with {key}"));
    let role = Role::Caller { idle: CALLER_IDLE_TIMEOUT };
    let outcome = run_raw_call(blocking(stream)?, &ctx, limits, role, started).await?;
    judge(&outcome, &key)
}
