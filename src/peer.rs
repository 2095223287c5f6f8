//! This peer's part: listening for calls (one at a time, a second caller is told "busy")
//! or calling a listener (remembering its fingerprint on first contact, refusing a
//! changed one), and turning how each call ended into words and an exit status.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use quinn::{Connection, Endpoint};
use rustls::pki_types::CertificateDer;

use crate::call::{CallContext, CallOutcome};
use crate::cli::PeerAddress;
use crate::net::endpoint::{self, CloseCode, Ending, IDLE_TIMEOUT};
use crate::net::identity::{Fingerprint, Identity};
use crate::net::known_peers::{ANY_ADDRESS, KnownPeers};
use crate::net::safety::safety_code;
use crate::net::trust::{TrustPolicy, Verdict};
use crate::view::View;

/// How long a call attempt waits for the listener to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished call means for the user.
pub(crate) fn judge(outcome: &CallOutcome, peer: &str) -> anyhow::Result<()> {
    let summary = &outcome.summary;
    if summary.frames_sent > 0 || summary.frames_received > 0 || summary.audio_packets_received > 0 {
        let sound = if summary.audio_packets_received > 0 {
            format!(
                ", sound mouth-to-ear p50 {} ms, {} of {} frames concealed",
                summary.mouth_to_ear_ms_p50.map_or("-".into(), |v| format!("{v:.1}")),
                summary.audio_concealed,
                summary.audio_packets_received,
            )
        } else {
            String::new()
        };
        println!(
            "call with {peer} ended after {:.1} s: sent {} frames ({:.0} kbps), received {} frames ({:.1} fps, {:.0} kbps), latency p50 {} ms p95 {} ms{}{sound}",
            summary.t_s,
            summary.frames_sent,
            summary.kbps_sent,
            summary.frames_received,
            summary.fps_received,
            summary.kbps_received,
            summary.latency_ms_p50.map_or("-".into(), |v| format!("{v:.1}")),
            summary.latency_ms_p95.map_or("-".into(), |v| format!("{v:.1}")),
            summary.psnr_db.map_or(String::new(), |v| format!(", PSNR {v:.1} dB")),
        );
    }
    match &outcome.ending {
        Ending::Local => Ok(()),
        Ending::PeerHungUp => {
            println!("{peer} hung up");
            Ok(())
        }
        Ending::Busy => bail!("{peer} is busy in another call; try again later"),
        Ending::Vanished => bail!(
            "lost the call with {peer}: nothing heard for {} s (peer killed, network down, or a firewall in the way)",
            IDLE_TIMEOUT.as_secs()
        ),
        Ending::VersionMismatch => {
            bail!("{peer} speaks another version of the chat protocol; run the same chat version on both sides")
        }
        Ending::IdentityRefused => bail!(
            "{peer} refused the call: it does not accept this peer's identity. Give its owner your fingerprint \
             (chat --fingerprint) to accept or pin, or ask them to run with --accept-new"
        ),
        Ending::Other(reason) => bail!("call with {peer} failed: {reason}"),
    }
}

fn peer_fingerprint(conn: &Connection) -> Option<Fingerprint> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().map(Fingerprint::of)
}

/// What became of one incoming connection.
enum Incoming {
    /// The handshake failed or the caller was refused: no call took place.
    NoCall(String),
    /// A call took place and ended like this.
    Call(anyhow::Result<()>),
}

/// Why a handshake with a caller failed, in words.
fn handshake_failure(error: &quinn::ConnectionError) -> String {
    match Ending::of(error) {
        Ending::IdentityRefused => {
            "it refused this peer's identity (it remembers another fingerprint for this address, or pinned another)"
                .into()
        }
        Ending::VersionMismatch => "it speaks another version of the chat protocol".into(),
        Ending::Vanished => "it stopped answering during the handshake".into(),
        _ => error.to_string(),
    }
}

/// How long a person has to accept a new peer.
const ASK_TIMEOUT: Duration = Duration::from_secs(25);

/// Who this peer is and whom it trusts.
pub struct Trust {
    pub identity: Identity,
    pub certs_dir: PathBuf,
    pub policy: TrustPolicy,
    /// `--name`: what to call a newly accepted peer in the known-peers file.
    pub name: Option<String>,
}

impl Trust {
    /// The safety code of this connection, for the call's figures.
    fn safety_code(&self, conn: &Connection, remote: &Fingerprint) -> Option<String> {
        safety_code(conn, &self.identity.fingerprint(), remote)
    }

    /// Once the call is up: shows the safety code, and remembers a newly accepted peer.
    fn call_established(&self, code: Option<&str>, view: &View, remember: Option<(&str, Fingerprint)>) {
        if let Some(code) = code {
            println!(
                "safety code: {code}  (read it to each other: if the codes differ, someone is in between; hang up)"
            );
            view.set_safety_code(code);
        }
        if let Some((address, fingerprint)) = remember {
            self.remember(address, fingerprint);
        }
    }

    /// Remembers a newly accepted peer; a failure to write is reported, not fatal.
    fn remember(&self, address: &str, fingerprint: Fingerprint) {
        let result = KnownPeers::load(&self.certs_dir)
            .and_then(|mut known| known.remember(address, fingerprint, self.name.as_deref()).map(|()| known));
        match result {
            Ok(known) => println!("remembered {fingerprint} in {}", known.path().display()),
            Err(e) => eprintln!("chat: could not remember the peer: {e}"),
        }
    }
}

/// Takes one incoming connection through the handshake, the trust decision and the call.
async fn answer(incoming: quinn::Incoming, ctx: Arc<CallContext>, trust: Arc<Trust>) -> Incoming {
    let started = Instant::now();
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            return Incoming::NoCall(format!("a caller at {remote} could not connect: {}", handshake_failure(&e)));
        }
    };
    let Some(presented) = peer_fingerprint(&conn) else {
        conn.close(CloseCode::Refused.code(), b"no certificate");
        return Incoming::NoCall(format!("a caller at {remote} presented no certificate: refused"));
    };
    let known = match KnownPeers::load(&trust.certs_dir) {
        Ok(known) => known,
        Err(e) => {
            conn.close(CloseCode::Refused.code(), b"cannot read known peers");
            return Incoming::NoCall(e.to_string());
        }
    };
    let mut remember = false;
    match trust.policy.judge_caller(&known, presented) {
        Verdict::Known(label) => println!("call from {remote} ({label}), fingerprint {presented}"),
        Verdict::New => {
            println!("call from {remote}: new peer, fingerprint {presented}, accepted (--accept-new)");
            remember = true;
        }
        Verdict::Ask => {
            println!("incoming call from {remote}: a new peer, fingerprint {presented}");
            if !crate::prompt::confirm("Accept this caller and remember it?", ASK_TIMEOUT).await {
                conn.close(CloseCode::Refused.code(), b"not accepted");
                return Incoming::NoCall(format!("did not accept the caller at {remote}"));
            }
            remember = true;
        }
        Verdict::Refuse(refusal) => {
            // Closed before any stream is accepted: an unknown caller gets nothing.
            conn.close(CloseCode::Refused.code(), b"identity not accepted");
            return Incoming::NoCall(refusal.explain(&format!("the caller at {remote}"), known.path()));
        }
    }
    let code = trust.safety_code(&conn, &presented);
    ctx.view.set_headline(format!("in a call with {remote}"));
    let outcome = ctx
        .run(conn, false, started, code.clone(), || {
            trust.call_established(code.as_deref(), &ctx.view, remember.then_some((ANY_ADDRESS, presented)));
        })
        .await;
    Incoming::Call(match outcome {
        Ok(outcome) => judge(&outcome, &remote.to_string()),
        Err(e) => Err(e.into()),
    })
}

/// Waits for calls on `addr`. With `once`, returns after the first call, with its result.
pub async fn listen(addr: SocketAddr, trust: Arc<Trust>, ctx: Arc<CallContext>, once: bool) -> anyhow::Result<()> {
    let endpoint = endpoint::listener(addr, &trust.identity)?;
    let local = endpoint.local_addr().context("reading the listening address")?;
    println!("listening on {local} (UDP); this peer's fingerprint: {}", trust.identity.fingerprint());
    ctx.view.set_headline(format!("waiting for a call on {local}"));
    let mut active: Option<tokio::task::JoinHandle<Incoming>> = None;
    let result = loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break Ok(()) };
                if active.is_some() {
                    let remote = incoming.remote_address();
                    tokio::spawn(async move {
                        if let Ok(conn) = incoming.await {
                            conn.close(CloseCode::Busy.code(), b"busy");
                        }
                    });
                    println!("refused a call from {remote}: already in a call");
                    continue;
                }
                active = Some(tokio::spawn(answer(incoming, Arc::clone(&ctx), Arc::clone(&trust))));
            }
            finished = async { active.as_mut().expect("guarded").await }, if active.is_some() => {
                active = None;
                ctx.view.set_headline(format!("waiting for a call on {local}"));
                match finished.context("call task failed")? {
                    Incoming::NoCall(reason) => eprintln!("chat: {reason}"),
                    Incoming::Call(result) if once => break result,
                    Incoming::Call(result) => {
                        if let Err(e) = result {
                            eprintln!("chat: {e:#}");
                        }
                    }
                }
                if ctx.view.quit_requested() {
                    break Ok(());
                }
            }
            _ = ctx.view.wait_for_quit(), if active.is_none() => break Ok(()),
        }
    };
    close_gracefully(&endpoint).await;
    result
}

/// Calls `peer` and runs the call; `started` is when the user asked for it (the call's
/// figures, such as the time to the first picture, count from there).
pub async fn call(
    peer: &PeerAddress,
    trust: Arc<Trust>,
    ctx: Arc<CallContext>,
    started: Instant,
) -> anyhow::Result<()> {
    let key = peer.key();
    let addr = tokio::net::lookup_host((peer.host.as_str(), peer.port))
        .await
        .with_context(|| format!("cannot resolve {}: check the name", peer.host))?
        .next()
        .with_context(|| format!("{} has no address", peer.host))?;
    let known = KnownPeers::load(&trust.certs_dir)?;
    let expected = trust.policy.expected_listener(&known, &key);
    let seen = Arc::new(Mutex::new(None));
    let endpoint = endpoint::caller(addr)?;
    ctx.view.set_headline(format!("calling {key}"));
    println!("calling {key} ({addr}); this peer's fingerprint: {}", trust.identity.fingerprint());
    let connecting = endpoint::connect(&endpoint, addr, &trust.identity, expected, Arc::clone(&seen))?;
    let conn = tokio::select! {
        conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => conn,
        _ = ctx.view.wait_for_quit() => return Ok(()),
    };
    let conn = match conn {
        Err(_) => bail!(
            "no answer from {key} within {} s: is `chat --listen` running there, and is UDP port {} open?",
            CONNECT_TIMEOUT.as_secs(),
            peer.port
        ),
        Ok(Err(e)) => {
            // A listener that failed the pin in the handshake: say whose identity it showed.
            let presented = *seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(presented) = presented.filter(|p| Some(*p) != expected)
                && let Verdict::Refuse(refusal) = trust.policy.judge_listener(&known, &key, presented)
            {
                bail!("{} Nothing was sent to it.", refusal.explain(&key, known.path()));
            }
            return judge(&CallOutcome { ending: Ending::of(&e), summary: Default::default() }, &key);
        }
        Ok(Ok(conn)) => conn,
    };
    let presented = peer_fingerprint(&conn).context("the listener presented no certificate")?;
    let mut remember = false;
    match trust.policy.judge_listener(&known, &key, presented) {
        Verdict::Known(_) => {}
        Verdict::New => {
            println!("{key} is a new peer, fingerprint {presented}: accepted (--accept-new)");
            remember = true;
        }
        Verdict::Ask => {
            println!("{key} is a new peer; its fingerprint: {presented}");
            println!("Compare it with what `chat --fingerprint` prints there before you accept.");
            if !crate::prompt::confirm("Accept this peer and remember it?", ASK_TIMEOUT).await {
                conn.close(CloseCode::Refused.code(), b"not accepted");
                close_gracefully(&endpoint).await;
                bail!("did not accept {key}'s identity; nothing was sent to it");
            }
            remember = true;
        }
        Verdict::Refuse(refusal) => {
            conn.close(CloseCode::Refused.code(), b"identity not accepted");
            close_gracefully(&endpoint).await;
            bail!("{} Nothing was sent to it.", refusal.explain(&key, known.path()));
        }
    }
    let code = trust.safety_code(&conn, &presented);
    ctx.view.set_headline(format!("in a call with {key}"));
    let outcome = ctx
        .run(conn, true, started, code.clone(), || {
            trust.call_established(code.as_deref(), &ctx.view, remember.then_some((key.as_str(), presented)));
        })
        .await?;
    close_gracefully(&endpoint).await;
    judge(&outcome, &key)
}

/// Gives close frames a moment to reach the peer before the process exits.
async fn close_gracefully(endpoint: &Endpoint) {
    endpoint.close(CloseCode::HangUp.code(), b"hang-up");
    let _ = tokio::time::timeout(Duration::from_millis(500), endpoint.wait_idle()).await;
}
