//! One request to the router's PCP/NAT-PMP port and its answer: sent again on RFC 6886's
//! schedule (250 ms, doubling) until an answer parses or time runs out. Answers are
//! bounded input from the LAN: only the router's own address and port count, a datagram
//! over PCP's 1100 bytes is refused unread, and a router that only sends garbage, or
//! nothing, costs at most `ASK_TIMEOUT`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use super::nat_pmp;
use super::pcp::MAX_MESSAGE_BYTES;

/// How long one request may take, all resends included.
pub const ASK_TIMEOUT: Duration = Duration::from_millis(2000);
/// When the request goes out again, from the first send.
const RESENDS: [Duration; 3] = [Duration::from_millis(250), Duration::from_millis(750), Duration::from_millis(1750)];

/// How an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Nothing came back in time.
    #[error("no answer from {0} within {ms} ms", ms = ASK_TIMEOUT.as_millis())]
    NoAnswer(SocketAddrV4),
    /// The router's host said nothing listens on the port.
    #[error("nothing listens on {0} (the router has no PCP or NAT-PMP service)")]
    Closed(SocketAddrV4),
    /// Only answers that did not parse came back; the last one's fault.
    #[error("{0}")]
    Bad(String),
    /// The router answered, and refused.
    #[error("{0}")]
    Refused(String),
    #[error("UDP to the router: {0}")]
    Io(#[from] io::Error),
}

/// What a parser says of one answer.
pub enum Reading<T> {
    /// The answer we waited for.
    Done(T),
    /// A definite no from the router: stop asking.
    Refused(String),
    /// Not an answer to this request (malformed, another message): keep waiting.
    Bad(String),
}

/// A socket talking to the router's port 5351.
pub struct RouterSocket {
    socket: tokio::net::UdpSocket,
    router: SocketAddrV4,
    local: Ipv4Addr,
}

impl RouterSocket {
    pub async fn open(gateway: Ipv4Addr) -> io::Result<Self> {
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
        let router = SocketAddrV4::new(gateway, nat_pmp::PORT);
        socket.connect(router).await?;
        let local = match socket.local_addr()? {
            SocketAddr::V4(local) => *local.ip(),
            SocketAddr::V6(_) => return Err(io::Error::other("an IPv4 socket reported an IPv6 address")),
        };
        Ok(Self { socket, router, local })
    }

    /// The address the router sees this machine at.
    pub fn local_ip(&self) -> Ipv4Addr {
        self.local
    }

    /// Sends `request` until `read` takes an answer, the router refuses, or time runs out.
    pub async fn ask<T>(&self, request: &[u8], read: impl Fn(&[u8]) -> Reading<T>) -> Result<T, ExchangeError> {
        let start = tokio::time::Instant::now();
        let deadline = start + ASK_TIMEOUT;
        let mut resends = RESENDS.iter().map(|d| start + *d);
        let mut next_send = Some(start);
        let mut last_bad = None;
        // One byte more than the largest message, to tell an oversized datagram.
        let mut buf = vec![0u8; MAX_MESSAGE_BYTES + 1];
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    return Err(last_bad.map_or(ExchangeError::NoAnswer(self.router), ExchangeError::Bad));
                }
                () = async { tokio::time::sleep_until(next_send.expect("guarded")).await }, if next_send.is_some() => {
                    match self.socket.send(request).await {
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Err(ExchangeError::Closed(self.router)),
                        Err(e) => return Err(e.into()),
                        Ok(_) => next_send = resends.next(),
                    }
                }
                received = self.socket.recv(&mut buf) => {
                    let n = match received {
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Err(ExchangeError::Closed(self.router)),
                        Err(e) => return Err(e.into()),
                        Ok(n) => n,
                    };
                    if n > MAX_MESSAGE_BYTES {
                        last_bad = Some(format!("an answer of more than {MAX_MESSAGE_BYTES} bytes"));
                        continue;
                    }
                    match read(&buf[..n]) {
                        Reading::Done(value) => return Ok(value),
                        Reading::Refused(reason) => return Err(ExchangeError::Refused(reason)),
                        Reading::Bad(reason) => {
                            tracing::debug!(router = %self.router, "ignored an answer: {reason}");
                            last_bad = Some(reason);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake router on loopback: answers each request with `answer(request)`.
    fn fake_router(answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> std::net::UdpSocket {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = socket.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = server.recv_from(&mut buf) {
                if let Some(reply) = answer(&buf[..n]) {
                    let _ = server.send_to(&reply, from);
                }
            }
        });
        socket
    }

    async fn ask_fake(router: &std::net::UdpSocket) -> Result<u8, ExchangeError> {
        let port = router.local_addr().unwrap().port();
        let mut socket = RouterSocket::open(Ipv4Addr::LOCALHOST).await.unwrap();
        socket.router = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        socket.socket.connect(socket.router).await.unwrap();
        socket
            .ask(&[1], |answer| match answer {
                [7] => Reading::Done(7),
                [0] => Reading::Refused("said no".into()),
                other => Reading::Bad(format!("{} bytes", other.len())),
            })
            .await
    }

    #[tokio::test]
    async fn garbage_oversized_and_silence_end_within_the_timeout_with_the_reason() {
        let started = std::time::Instant::now();
        let oversized = fake_router(|_| Some(vec![7; MAX_MESSAGE_BYTES + 1]));
        let error = ask_fake(&oversized).await.unwrap_err().to_string();
        assert!(error.contains("more than 1100 bytes"), "{error}");
        let garbage = fake_router(|_| Some(vec![3; 5]));
        assert_eq!(ask_fake(&garbage).await.unwrap_err().to_string(), "5 bytes");
        let silent = fake_router(|_| None);
        assert!(matches!(ask_fake(&silent).await, Err(ExchangeError::NoAnswer(..))));
        assert!(started.elapsed() < 3 * ASK_TIMEOUT + Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_good_answer_after_garbage_is_taken_and_a_refusal_ends_at_once() {
        let count = std::sync::atomic::AtomicUsize::new(0);
        let late = fake_router(move |_| {
            Some(if count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 { vec![3] } else { vec![7] })
        });
        assert_eq!(ask_fake(&late).await.unwrap(), 7);
        let no = fake_router(|_| Some(vec![0]));
        assert_eq!(ask_fake(&no).await.unwrap_err().to_string(), "said no");
    }
}
