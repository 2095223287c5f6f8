//! This peer's part: listening for calls (one at a time, a second caller is told "busy")
//! or calling a listener (remembering its fingerprint on first contact, refusing a
//! changed one), and turning how each call ended into words and an exit status.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use quinn::{Connection, Endpoint};
use rustls::pki_types::CertificateDer;

use crate::call::{CallContext, CallOutcome, CallSide};
use crate::cli::PeerAddress;
use crate::net::admission::{Admission, AdmissionLimits, Decision};
use crate::net::endpoint::{self, CONNECT_TIMEOUT, CloseCode, Ending, IDLE_TIMEOUT};
use crate::net::identity::{Fingerprint, Identity};
use crate::net::known_peers::{ANY_ADDRESS, KnownPeer, KnownPeers};
use crate::net::port_map::Methods;
use crate::net::port_map_keeper::{Event as PortMapEvent, PortMapKeeper};
use crate::net::port_probe::{self, PortProbe};
use crate::net::safety::safety_code;
use crate::net::trust::{TrustPolicy, Verdict};
use crate::prompt::Answer;
use crate::reachability;
use crate::view::View;

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
        Ending::CannotAnswer(reason) => bail!("{peer} cannot take calls: {reason}; tell its owner"),
        Ending::ProtocolViolation(reason) => bail!("ended the call with {peer}: {reason}"),
        Ending::Other(reason) => bail!("call with {peer} failed: {reason}"),
    }
}

fn peer_fingerprint(conn: &Connection) -> Option<Fingerprint> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().map(Fingerprint::of)
}

/// How long a person has to accept a new peer.
const ASK_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a caller whose address is proven may take over the rest of the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Handshakes a listener has in progress at once.
const HANDSHAKE_LIMITS: AdmissionLimits = AdmissionLimits { total: 64, per_source: 4 };

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

    /// A known peer answered at a new address: says so, and moves its entry there; a
    /// failure to write is reported, not fatal.
    fn moved(&self, peer: &KnownPeer, address: &str) {
        let before = if peer.address == ANY_ADDRESS {
            "it called here before".to_string()
        } else {
            format!("known at {} before", peer.address)
        };
        let result = KnownPeers::load(&self.certs_dir).and_then(|mut known| {
            let line = known.moved(peer, address)?;
            Ok((line, known.path().to_path_buf()))
        });
        match result {
            Ok((line, path)) => println!(
                "{} now answers at {address} ({before}): same identity {}, accepted; line {line} of {} updated",
                peer.label(),
                peer.fingerprint,
                path.display()
            ),
            Err(e) => eprintln!("chat: could not update the known peers: {e}"),
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

/// A caller that passed the handshake and the trust decision.
struct Accepted {
    conn: Connection,
    remote: SocketAddr,
    presented: Fingerprint,
    /// Whether to add it to the known peers once the call is up.
    remember: bool,
    started: Instant,
    /// The line that tells the user who is calling, once the call is taken.
    announcement: String,
}

/// Why a connection attempt led to no call.
enum NoCall {
    /// Worth a line to the user.
    Said(String),
    /// Only for the log: a handshake that stalled, which is what floods are made of.
    Logged(String),
}

impl From<String> for NoCall {
    fn from(reason: String) -> Self {
        Self::Said(reason)
    }
}

/// Takes a connection attempt through the handshake and the trust decision. Nothing a
/// caller sends is read until it is accepted, and it holds no call slot meanwhile: the
/// listener decides what to do with an accepted caller (`Ok`), or says why there is no
/// call (`Err`).
async fn vet_caller(
    incoming: quinn::Incoming,
    trust: Arc<Trust>,
    in_call: Arc<AtomicBool>,
) -> Result<Accepted, NoCall> {
    let started = Instant::now();
    let remote = endpoint::canonical(incoming.remote_address());
    let connecting = incoming.accept().map_err(|e| format!("a caller at {remote} could not connect: {e}"))?;
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            let reason = endpoint::caller_handshake_failure(&e);
            return Err(format!("a caller at {remote} could not connect: {reason}").into());
        }
        Err(_) => {
            return Err(NoCall::Logged(format!(
                "a caller at {remote} did not finish its handshake within {} s: dropped",
                HANDSHAKE_TIMEOUT.as_secs()
            )));
        }
    };
    let Some(presented) = peer_fingerprint(&conn) else {
        conn.close(CloseCode::Refused.code(), b"no certificate");
        return Err(format!("a caller at {remote} presented no certificate: refused").into());
    };
    let known = KnownPeers::load(&trust.certs_dir).map_err(|e| {
        conn.close(CloseCode::CannotAnswer.code(), b"the listener cannot read its known-peers file");
        format!("could not take the call from {remote}: {e}")
    })?;
    let (remember, announcement) = match trust.policy.judge_caller(&known, presented) {
        Verdict::Known(label) => (false, format!("call from {remote} ({label}), fingerprint {presented}")),
        Verdict::Moved(_) => unreachable!("callers are known by their fingerprint alone"),
        Verdict::New => {
            (true, format!("call from {remote}: new peer, fingerprint {presented}, accepted (--accept-new)"))
        }
        Verdict::Ask if in_call.load(Ordering::Relaxed) => {
            conn.close(CloseCode::Busy.code(), b"busy");
            return Err(format!("refused a call from {remote}: already in a call").into());
        }
        Verdict::Ask => {
            println!("incoming call from {remote}: a new peer, fingerprint {presented}");
            match crate::prompt::confirm("Accept this caller and remember it?", ASK_TIMEOUT).await {
                Answer::Yes => (true, format!("call from {remote}: accepted")),
                Answer::Busy => {
                    conn.close(CloseCode::Busy.code(), b"busy");
                    return Err(format!("refused a call from {remote}: still asking about another caller").into());
                }
                Answer::No | Answer::TimedOut => {
                    conn.close(CloseCode::Refused.code(), b"not accepted");
                    return Err(format!("did not accept the caller at {remote}").into());
                }
            }
        }
        Verdict::Refuse(refusal) => {
            // Closed before any stream is accepted: an unknown caller gets nothing.
            conn.close(CloseCode::Refused.code(), b"identity not accepted");
            return Err(refusal.explain(&format!("the caller at {remote}"), known.path()).into());
        }
    };
    Ok(Accepted { conn, remote, presented, remember, started, announcement })
}

/// Runs an accepted caller's call; its result as the user should see it.
async fn answer(caller: Accepted, ctx: Arc<CallContext>, trust: Arc<Trust>) -> anyhow::Result<()> {
    let Accepted { conn, remote, presented, remember, started, announcement } = caller;
    println!("{announcement}");
    let code = trust.safety_code(&conn, &presented);
    ctx.view.set_headline(format!("in a call with {remote}"));
    let outcome = ctx
        .run(conn, CallSide::Listener, started, code.clone(), || {
            trust.call_established(code.as_deref(), &ctx.view, remember.then_some((ANY_ADDRESS, presented)));
        })
        .await?;
    judge(&outcome, &remote.to_string())
}

/// Waits for calls on `addr`. With `once`, returns after the first call, with its result.
///
/// Connection attempts are vetted side by side (address proven by Retry, handshake, trust
/// decision), and only a caller that passed all three takes the one call slot; while a call
/// is on, another vetted caller is told it is busy.
pub async fn listen(
    addr: SocketAddr,
    trust: Arc<Trust>,
    ctx: Arc<CallContext>,
    once: bool,
    port_map: Option<Methods>,
) -> anyhow::Result<()> {
    let endpoint = endpoint::listener(addr, &trust.identity)?;
    let local = endpoint.local_addr().context("reading the listening address")?;
    println!(
        "listening on {local} (UDP, {}); this peer's fingerprint: {}",
        endpoint::families(local),
        trust.identity.fingerprint()
    );
    if let Some(line) = reachability::ipv6_line(local) {
        println!("{line}");
    }
    let port_map = port_map.filter(|_| reachability::wants_port_map(local));
    let public = port_map.and_then(|_| reachability::public_ipv4());
    if let Some(ip) = public {
        println!(
            "reachable from the internet at {ip}:{} (this machine's own address: no mapping needed)",
            local.port()
        );
    }
    let keeper = port_map.filter(|_| public.is_none()).map(|methods| {
        let ctx = Arc::clone(&ctx);
        PortMapKeeper::start(local.port(), methods, move |event| {
            let (line, json) = reachability::port_map_line(&event, local.port());
            match event {
                PortMapEvent::Lost(_) => eprintln!("chat: {line}"),
                _ => println!("{line}"),
            }
            ctx.write_json(&json);
        })
    });
    ctx.view.set_headline(format!("waiting for a call on {local}"));
    let mut admission = Admission::new(HANDSHAKE_LIMITS);
    let mut vetting = tokio::task::JoinSet::new();
    let in_call = Arc::new(AtomicBool::new(false));
    let mut active: Option<tokio::task::JoinHandle<anyhow::Result<()>>> = None;
    let result = loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break Ok(()) };
                let source = endpoint::canonical(incoming.remote_address()).ip();
                match admission.decide(source, incoming.remote_address_validated()) {
                    Decision::Retry => {
                        if let Err(e) = incoming.retry() {
                            e.into_incoming().refuse();
                        }
                    }
                    Decision::Refuse => {
                        tracing::info!(%source, in_progress = admission.in_progress(), "too many handshakes: refused");
                        incoming.refuse();
                    }
                    Decision::Accept => {
                        let vetted = vet_caller(incoming, Arc::clone(&trust), Arc::clone(&in_call));
                        vetting.spawn(async move { (source, vetted.await) });
                    }
                }
            }
            Some(vetted) = vetting.join_next() => {
                let (source, vetted) = match vetted.context("vetting a caller failed") {
                    Ok(vetted) => vetted,
                    Err(e) => break Err(e),
                };
                admission.finished(source);
                match vetted {
                    Err(NoCall::Said(reason)) => eprintln!("chat: {reason}"),
                    Err(NoCall::Logged(reason)) => tracing::info!("{reason}"),
                    Ok(caller) if active.is_some() => {
                        caller.conn.close(CloseCode::Busy.code(), b"busy");
                        println!("refused a call from {}: already in a call", caller.remote);
                    }
                    Ok(caller) => {
                        in_call.store(true, Ordering::Relaxed);
                        active = Some(tokio::spawn(answer(caller, Arc::clone(&ctx), Arc::clone(&trust))));
                    }
                }
            }
            finished = async { active.as_mut().expect("guarded").await }, if active.is_some() => {
                active = None;
                in_call.store(false, Ordering::Relaxed);
                ctx.view.set_headline(format!("waiting for a call on {local}"));
                let result = match finished {
                    Ok(result) => result,
                    Err(e) => break Err(anyhow::Error::new(e).context("call task failed")),
                };
                if once {
                    break result;
                }
                if let Err(e) = result {
                    eprintln!("chat: {e:#}");
                }
                if ctx.view.quit_requested() {
                    break Ok(());
                }
            }
            _ = ctx.view.wait_for_quit(), if active.is_none() => break Ok(()),
        }
    };
    vetting.abort_all();
    close_gracefully(&endpoint).await;
    if let Some(keeper) = keeper
        && let Some((mapping, removed)) = keeper.stop().await
    {
        println!("{}", reachability::removed_line(&mapping, &removed));
    }
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
    let probe = PortProbe::open(addr).await.map_err(|e| {
        if port_probe::is_no_route(&e) {
            anyhow::anyhow!(
                "cannot reach {key}: this machine has no route to {} ({e}). Check the address, and that this \
                 machine is online{}",
                addr.ip(),
                if addr.is_ipv6() { " with IPv6 (or call an IPv4 address)" } else { "" }
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot open a UDP socket to call {key}"))
        }
    })?;
    let endpoint = endpoint::caller(addr)?;
    ctx.view.set_headline(format!("calling {key}"));
    println!("calling {key} ({addr}); this peer's fingerprint: {}", trust.identity.fingerprint());
    let connecting = endpoint::connect(&endpoint, addr, &trust.identity, expected, Arc::clone(&seen))?;
    let handshake = tokio::time::timeout(CONNECT_TIMEOUT, connecting);
    tokio::pin!(handshake);
    let mut port_answered = false;
    let conn = loop {
        tokio::select! {
            conn = &mut handshake => break conn,
            answer = probe.answer(), if !port_answered => match answer {
                port_probe::Answer::Refused => bail!(
                    "{key} refused the call: nothing listens on UDP port {} there (its machine said so). \
                     Check the port, and that `chat --listen` is running there",
                    peer.port
                ),
                port_probe::Answer::Quic => port_answered = true,
            },
            _ = ctx.view.wait_for_quit() => return Ok(()),
        }
    };
    let no_answer = || {
        if port_answered {
            anyhow::anyhow!(
                "{key} answers on UDP port {}, but the call's handshake did not finish within {} s: \
                 packets are lost on the way (try again), or it is not chat",
                peer.port,
                CONNECT_TIMEOUT.as_secs()
            )
        } else {
            anyhow::anyhow!(
                "nothing answers at {key} (UDP port {}) within {} s: the listener is offline, behind a router \
                 that does not forward the port, or a firewall drops UDP. Ask them to run `chat --reachability`, \
                 or to call you instead",
                peer.port,
                CONNECT_TIMEOUT.as_secs()
            )
        }
    };
    drop(probe);
    let conn = match conn {
        Err(_) => return Err(no_answer()),
        Ok(Err(quinn::ConnectionError::TimedOut)) => return Err(no_answer()),
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
        Verdict::Moved(peer) => trust.moved(&peer, &key),
        Verdict::New => {
            println!("{key} is a new peer, fingerprint {presented}: accepted (--accept-new)");
            remember = true;
        }
        Verdict::Ask => {
            println!("{key} is a new peer; its fingerprint: {presented}");
            println!("Compare it with what `chat --fingerprint` prints there before you accept.");
            if crate::prompt::confirm("Accept this peer and remember it?", ASK_TIMEOUT).await != Answer::Yes {
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
        .run(conn, CallSide::Caller(endpoint.clone()), started, code.clone(), || {
            trust.call_established(code.as_deref(), &ctx.view, remember.then_some((key.as_str(), presented)));
        })
        .await?;
    close_gracefully(&endpoint).await;
    judge(&outcome, &key)
}

/// Gives close frames a moment to reach the peer before the process exits.
async fn close_gracefully(endpoint: &Endpoint) {
    endpoint.close(CloseCode::HangUp.code(), b"hang-up");
    let _ = tokio::time::timeout(Duration::from_millis(300), endpoint.wait_idle()).await;
}
