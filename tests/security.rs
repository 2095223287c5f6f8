//! Knowing who you are talking to, end to end: trust policies, a caller without a
//! certificate, the safety code on both ends, a man in the middle that terminates TLS on
//! each side, and limits that hold against a hostile peer.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat::net::endpoint;
use chat::net::identity::Identity;
use chat::net::wire::{ControlMessage, FrameHeader, video_stream_preamble};
use common::hostile::{close_reason, hostile_peer, runtime};
use common::{Peer, fingerprint_of, peer_args_with, start_caller, start_listener, strict_args, summary};

fn safety_code(peer: &Peer) -> String {
    let out = peer.stdout();
    let line = out.lines().find(|l| l.starts_with("safety code: ")).unwrap_or_else(|| panic!("{}", peer.describe()));
    line["safety code: ".len()..].split("  ").next().unwrap().to_string()
}

#[test]
fn an_unknown_caller_is_refused_by_a_known_peers_only_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", strict_args(dir.path(), "a", &["--once"]));
    let mut b = start_caller(dir.path(), "b", port, peer_args_with(dir.path(), "b", &["--duration", "2"]));
    assert!(!b.expect_exit(Duration::from_secs(15)).success(), "{}", b.describe());
    assert!(b.stderr().contains("refused the call"), "{}", b.describe());
    assert!(a.stderr().contains("is not a known peer"), "{}", a.describe());
    assert!(!b.stdout().contains("safety code"), "no call took place: {}", b.describe());
    // Refusing a stranger is not the call `--once` waits for.
    assert!(a.wait(Duration::from_millis(300)).is_none(), "{}", a.describe());
    // The caller did not remember a listener that refused it.
    assert!(!dir.path().join("certs-b/known_peers").exists());

    // Pinned with --peer, the same caller is welcome, and remembered under its --name.
    drop(a);
    let b_fp = fingerprint_of(dir.path(), "b");
    let (mut a, port) = start_listener(dir.path(), "a2", strict_args(dir.path(), "a2", &["--once", "--peer", &b_fp]));
    let mut b =
        start_caller(dir.path(), "b", port, peer_args_with(dir.path(), "b", &["--duration", "1", "--name", "alice"]));
    assert!(b.expect_exit(Duration::from_secs(15)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
    let known = std::fs::read_to_string(dir.path().join("certs-b/known_peers")).unwrap();
    assert!(known.trim_end().ends_with(" alice") && known.contains(&format!("127.0.0.1:{port} ")), "{known}");
}

#[test]
fn both_ends_show_the_same_safety_code() {
    let dir = tempfile::tempdir().unwrap();
    let (a_json, b_json) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let (mut a, port) = start_listener(
        dir.path(),
        "a",
        peer_args_with(dir.path(), "a", &["--once", "--stats-json", a_json.to_str().unwrap()]),
    );
    let mut b = start_caller(
        dir.path(),
        "b",
        port,
        peer_args_with(dir.path(), "b", &["--duration", "1", "--stats-json", b_json.to_str().unwrap()]),
    );
    assert!(b.expect_exit(Duration::from_secs(15)).success(), "{}", b.describe());
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
    let code = safety_code(&a);
    assert_eq!(code, safety_code(&b));
    assert_eq!(code.len(), 15, "{code}");
    assert_eq!(summary(&a_json)["safety_code"], code.as_str());
    assert_eq!(summary(&b_json)["safety_code"], code.as_str());
}

/// A rustls verifier that accepts any server: only for a test client that must get as far
/// as possible without a certificate of its own.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[test]
fn a_caller_without_a_certificate_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    runtime().block_on(async {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
            .with_no_client_auth();
        tls.alpn_protocols = vec![chat::net::wire::ALPN.to_vec()];
        let config =
            quinn::ClientConfig::new(Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap()));
        let client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), async {
            let conn = client.connect_with(config, addr, "chat").unwrap().await?;
            // The server refuses in its half of the handshake: no stream ever opens.
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&ControlMessage::Hello { width: 64, height: 64, fps: 1 }.encode()).await?;
            let mut byte = [0u8; 1];
            recv.read_exact(&mut byte).await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })
        .await
        .expect("the listener neither answered nor refused");
        assert!(result.is_err(), "a caller without a certificate got an answer");
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(a.stderr().contains("could not connect: it presented no certificate"), "{}", a.describe());
    assert!(!a.stderr().contains("refused this peer's identity"), "{}", a.describe());
    assert!(a.wait(Duration::from_millis(100)).is_none(), "a failed handshake ended a --once listener");
}

/// A man in the middle: accepts the caller with its own identity, calls the listener with
/// the same identity, and passes every stream and datagram through.
async fn relay(front: quinn::Endpoint, listener: SocketAddr, identity: Arc<Identity>) {
    let Some(incoming) = front.accept().await else { return };
    let Ok(caller) = incoming.await else { return };
    let back_endpoint = endpoint::caller(listener).unwrap();
    let seen = Arc::new(Mutex::new(None));
    let Ok(connecting) = endpoint::connect(&back_endpoint, listener, &identity, None, seen) else { return };
    let Ok(callee) = connecting.await else {
        caller.close(0u32.into(), b"relay could not reach the listener");
        return;
    };
    // As a peer does once both sides agreed to talk: let the other side's streams in.
    endpoint::open_for_call(&caller);
    endpoint::open_for_call(&callee);
    let pipe = |mut from: quinn::RecvStream, mut to: quinn::SendStream| {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
            let _ = to.finish();
        })
    };
    loop {
        tokio::select! {
            bi = caller.accept_bi() => {
                let Ok((to_caller, from_caller)) = bi else { break };
                let Ok((to_callee, from_callee)) = callee.open_bi().await else { break };
                pipe(from_caller, to_callee);
                pipe(from_callee, to_caller);
            }
            datagram = caller.read_datagram() => {
                let Ok(datagram) = datagram else { break };
                let _ = callee.send_datagram(datagram);
            }
            datagram = callee.read_datagram() => {
                let Ok(datagram) = datagram else { break };
                let _ = caller.send_datagram(datagram);
            }
            uni = caller.accept_uni() => {
                let Ok(from) = uni else { break };
                let Ok(to) = callee.open_uni().await else { break };
                pipe(from, to);
            }
            uni = callee.accept_uni() => {
                let Ok(from) = uni else { break };
                let Ok(to) = caller.open_uni().await else { break };
                pipe(from, to);
            }
        }
    }
    let reason = callee.close_reason().or(caller.close_reason());
    caller.close(0u32.into(), b"hang-up");
    callee.close(0u32.into(), b"hang-up");
    drop(reason);
    back_endpoint.wait_idle().await;
}

/// Starts the relay on its own runtime; returns its port.
fn start_relay(dir: &Path, listener_port: u16) -> (u16, std::thread::JoinHandle<()>) {
    let identity = Arc::new(Identity::load_or_create(&dir.join("certs-relay")).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        runtime().block_on(async move {
            let front = endpoint::listener("127.0.0.1:0".parse().unwrap(), &identity).unwrap();
            tx.send(front.local_addr().unwrap().port()).unwrap();
            let listener = format!("127.0.0.1:{listener_port}").parse().unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(30), relay(front, listener, identity)).await;
        });
    });
    (rx.recv().unwrap(), handle)
}

#[test]
fn a_man_in_the_middle_shows_each_side_a_different_safety_code() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let (relay_port, relay) = start_relay(dir.path(), port);
    let mut b = start_caller(dir.path(), "b", relay_port, peer_args_with(dir.path(), "b", &["--duration", "2"]));
    assert!(b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    a.expect_exit(Duration::from_secs(10));
    relay.join().unwrap();
    // Video went through the relay, but the codes give it away.
    assert!(b.stdout().contains("received"), "{}", b.describe());
    assert_ne!(safety_code(&a), safety_code(&b), "{}\n{}", a.describe(), b.describe());
}

#[test]
fn a_man_in_the_middle_is_refused_by_pinned_peers() {
    let dir = tempfile::tempdir().unwrap();
    // Make both identities first so each side can pin the other.
    let (a_fp, b_fp) = (fingerprint_of(dir.path(), "a"), fingerprint_of(dir.path(), "b"));

    // The caller pins the listener: the relay's certificate fails in the handshake.
    let (mut a, port) = start_listener(dir.path(), "a", strict_args(dir.path(), "a", &["--once", "--peer", &b_fp]));
    let (relay_port, relay) = start_relay(dir.path(), port);
    let mut b = start_caller(dir.path(), "b", relay_port, strict_args(dir.path(), "b", &["--peer", &a_fp]));
    assert!(!b.expect_exit(Duration::from_secs(20)).success(), "{}", b.describe());
    let err = b.stderr();
    assert!(err.contains("not the peer you asked for") && err.contains("Nothing was sent"), "{err}");
    relay.join().unwrap();

    // The listener pins the caller: the relay's call is refused before any stream, so the
    // caller behind the relay never gets a call (how it ends is up to the relay).
    let (relay_port, relay) = start_relay(dir.path(), port);
    let mut b = start_caller(dir.path(), "b", relay_port, peer_args_with(dir.path(), "b", &["--duration", "2"]));
    b.expect_exit(Duration::from_secs(20));
    relay.join().unwrap();
    assert!(!b.stdout().contains("safety code"), "{}", b.describe());
    assert!(!b.stdout().contains("received"), "{}", b.describe());
    assert!(a.stderr().contains("not the peer you asked for"), "{}", a.describe());
    assert!(a.wait(Duration::from_millis(100)).is_none(), "{}", a.describe());
}

#[test]
fn an_oversized_control_message_closes_the_call_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let reason = runtime().block_on(async {
        let mut peer = hostile_peer(dir.path(), port, None).await;
        peer.send.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
        close_reason(&peer.conn).await
    });
    assert!(reason.contains("65535") && reason.contains("limit"), "{reason}");
    assert!(!a.expect_exit(Duration::from_secs(5)).success());
    assert!(a.stderr().contains("broke the protocol"), "{}", a.describe());
}

#[test]
fn video_announcing_8192x8192_pictures_is_refused_before_decoding() {
    // A baseline SPS for 512x512 macroblocks (8192x8192 pixels).
    const HUGE_SPS: [u8; 15] = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x00, 0x20, 0x00, 0x04, 0x01, 0x80];
    let dir = tempfile::tempdir().unwrap();
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let started = Instant::now();
    let reason = runtime().block_on(async {
        let peer = hostile_peer(dir.path(), port, None).await;
        let mut video = peer.conn.open_uni().await.unwrap();
        video.write_all(&video_stream_preamble(0)).await.unwrap();
        let header = FrameHeader { seq: 0, capture_us: 0, sent_us: 0, keyframe: true, len: HUGE_SPS.len() as u32 };
        video.write_all(&header.encode()).await.unwrap();
        video.write_all(&HUGE_SPS).await.unwrap();
        close_reason(&peer.conn).await
    });
    assert!(reason.contains("8192x8192"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!a.expect_exit(Duration::from_secs(5)).success());
    assert!(a.stderr().contains("refused the peer's video"), "{}", a.describe());
}

/// `chat ARGS` on a pseudo-terminal (util-linux `script`), so that it asks; what the
/// terminal shows goes to `dir/NAME.tty`.
struct OnATerminal {
    child: std::process::Child,
    shown: std::path::PathBuf,
    name: String,
}

impl OnATerminal {
    fn start(dir: &Path, name: &str, args: &[String]) -> Self {
        let shown = dir.join(format!("{name}.tty"));
        let command =
            std::iter::once(common::chat().to_string()).chain(args.iter().cloned()).collect::<Vec<_>>().join(" ");
        let child = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env_remove("DISPLAY")
            .stdin(std::process::Stdio::piped())
            .stdout(std::fs::File::create(&shown).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("util-linux script");
        Self { child, shown, name: name.to_string() }
    }

    fn shown(&self) -> String {
        std::fs::read_to_string(&self.shown).unwrap_or_default().replace('\r', "")
    }

    /// Waits until the terminal shows `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.shown().contains(text) {
            assert!(Instant::now() < deadline, "{} never showed {text:?}:\n{}", self.name, self.shown());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port a listener on the terminal reports.
    fn listening_port(&self) -> u16 {
        self.wait_for("listening on");
        let text = self.shown();
        let line = text.lines().find(|l| l.starts_with("listening on")).unwrap();
        line.split_whitespace().nth(2).unwrap().rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Ctrl-C to the chat inside `script` (found by its certs directory).
    fn interrupt(&self, certs: &Path) {
        let pids = std::process::Command::new("pgrep").args(["-f", certs.to_str().unwrap()]).output().unwrap();
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = std::process::Command::new("kill").args(["-INT", pid]).status();
        }
    }

    fn type_line(&mut self, line: &str) {
        use std::io::Write;
        self.child.stdin.as_mut().unwrap().write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// Waits for chat to finish; whether it succeeded.
    fn wait(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "{} did not finish:\n{}", self.name, self.shown());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OnATerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `chat ARGS` on a terminal and answers `answer` to its question. Returns what the
/// terminal showed and whether chat succeeded.
fn on_a_terminal(dir: &Path, name: &str, args: &[String], answer: &str) -> (String, bool) {
    let mut terminal = OnATerminal::start(dir, name, args);
    terminal.wait_for("[y/N]");
    terminal.type_line(answer);
    let ok = terminal.wait();
    (terminal.shown(), ok)
}

#[test]
fn on_a_terminal_a_new_peer_is_asked_about() {
    let dir = tempfile::tempdir().unwrap();
    // The caller is asked about the listener, says yes, and remembers it by name.
    let (mut a, port) = start_listener(dir.path(), "a", peer_args_with(dir.path(), "a", &["--once"]));
    let mut args = strict_args(dir.path(), "b", &["--duration", "1", "--name", "alice"]);
    args.extend(["--call".to_string(), format!("127.0.0.1:{port}")]);
    let (shown, ok) = on_a_terminal(dir.path(), "b", &args, "y");
    assert!(ok, "{shown}");
    assert!(shown.contains("is a new peer; its fingerprint") && shown.contains("safety code"), "{shown}");
    assert!(a.expect_exit(Duration::from_secs(5)).success(), "{}", a.describe());
    let known = std::fs::read_to_string(dir.path().join("certs-b/known_peers")).unwrap();
    assert!(known.trim_end().ends_with(" alice"), "{known}");

    // A listener on a terminal is asked about a new caller, says no: no call.
    let mut args = strict_args(dir.path(), "c", &["--once"]);
    args.extend(["--listen", "127.0.0.1:0"].map(String::from));
    let mut c = OnATerminal::start(dir.path(), "c", &args);
    let port = c.listening_port();
    let mut d = start_caller(dir.path(), "d", port, peer_args_with(dir.path(), "d", &["--duration", "1"]));
    c.wait_for("[y/N]");
    c.type_line("n");
    assert!(!d.expect_exit(Duration::from_secs(20)).success(), "{}", d.describe());
    assert!(d.stderr().contains("refused the call"), "{}", d.describe());
    c.wait_for("did not accept the caller");
    assert!(c.shown().contains("incoming call from"), "{}", c.shown());
    // Declining is not the call `--once` waits for: stop the listener by hand.
    c.interrupt(&dir.path().join("certs-c"));
    assert!(c.wait(), "Ctrl-C should end a waiting listener with status 0");
}

#[test]
fn a_caller_waiting_for_an_answer_can_send_only_its_hello() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = strict_args(dir.path(), "c", &[]);
    args.extend(["--listen", "127.0.0.1:0"].map(String::from));
    let mut c = OnATerminal::start(dir.path(), "c", &args);
    let port = c.listening_port();
    runtime().block_on(async {
        let (conn, _endpoint) = common::hostile::connect(dir.path(), port, None).await;
        tokio::task::block_in_place(|| c.wait_for("[y/N]"));
        // While its user decides, the listener takes a hello's worth and no video stream.
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        let megabyte = vec![0u8; 1 << 20];
        let write = tokio::time::timeout(Duration::from_secs(1), send.write_all(&megabyte)).await;
        assert!(write.is_err(), "a caller nobody accepted sent 1 MiB");
        let video = tokio::time::timeout(Duration::from_secs(1), conn.open_uni()).await;
        assert!(video.is_err(), "a caller nobody accepted opened a video stream");
        assert!(conn.stats().udp_tx.bytes < 64 << 10, "{:?}", conn.stats().udp_tx);
    });
    c.type_line("n");
    c.wait_for("did not accept the caller");
    c.interrupt(&dir.path().join("certs-c"));
    assert!(c.wait(), "{}", c.shown());
}

#[test]
fn a_broken_known_peers_file_is_the_listeners_problem_not_the_callers() {
    let dir = tempfile::tempdir().unwrap();
    let b = fingerprint_of(dir.path(), "b");
    let (a, port) = start_listener(dir.path(), "a", strict_args(dir.path(), "a", &["--once"]));
    // The file breaks while the listener waits (someone edits it by hand).
    std::fs::write(dir.path().join("certs-a/known_peers"), format!("* {}\nthis is not a peer\n", b.replace(' ', "")))
        .unwrap();
    let mut b = start_caller(dir.path(), "b", port, peer_args_with(dir.path(), "b", &["--duration", "1"]));
    assert!(!b.expect_exit(Duration::from_secs(15)).success(), "{}", b.describe());
    assert!(b.stderr().contains("cannot take calls"), "{}", b.describe());
    assert!(!b.stderr().contains("refused"), "{}", b.describe());
    std::thread::sleep(Duration::from_millis(300));
    let said: String = a.stderr().lines().filter(|l| l.starts_with("chat: ")).collect();
    assert!(said.contains("known_peers:2:"), "{}", a.describe());
    assert!(!said.contains("refused") && !said.contains("identity"), "{}", a.describe());
}
