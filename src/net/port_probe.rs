//! Whether anything is there on a peer's UDP port, asked beside the QUIC handshake so that
//! a call that gets no answer can say why: no route to the peer, refused (its host says
//! nothing listens on the port), a QUIC server that answers, or silence.
//!
//! The probe is a padded QUIC Initial of a reserved version: a QUIC server answers it with
//! Version Negotiation (RFC 9000 §6) and does nothing else, so it costs the listener
//! nothing. It goes out on its own connected socket, because only a connected UDP socket
//! hears the ICMP "port unreachable" that a host sends back when nothing listens.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// When probes go out, from the start of the call: early enough to tell "refused" at once,
/// then spaced out, a few datagrams in all.
const SCHEDULE: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(300),
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(6),
];
/// A server answers unsupported versions only in datagrams this large (RFC 9000 §14.1).
const PROBE_BYTES: usize = 1200;
/// A version of the reserved `0x?a?a?a?a` pattern that forces Version Negotiation.
const RESERVED_VERSION: u32 = 0x1a2a_3a4a;
/// Long header form and the fixed bit: an Initial-shaped first byte.
const LONG_HEADER: u8 = 0xc0;
const CID_LEN: usize = 8;

/// What the probe learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The peer's host said nothing listens on the port (ICMP port unreachable).
    Refused,
    /// A QUIC server answered on the port.
    Quic,
}

/// A socket towards one peer, for probing its port.
pub struct PortProbe {
    socket: tokio::net::UdpSocket,
    packet: Vec<u8>,
    source_cid: [u8; CID_LEN],
}

impl PortProbe {
    /// Opens the probe's socket towards `peer`. An error here means this machine has no
    /// route to the peer (see `is_no_route`).
    pub async fn open(peer: SocketAddr) -> io::Result<Self> {
        let local: SocketAddr = match peer {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = tokio::net::UdpSocket::bind(local).await?;
        socket.connect(peer).await?;
        let mut ids = [0u8; 2 * CID_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut ids)
            .map_err(|_| io::Error::other("no random numbers for the probe"))?;
        let (destination_cid, source_cid) = ids.split_at(CID_LEN);
        let source_cid: [u8; CID_LEN] = source_cid.try_into().expect("split in halves");
        Ok(Self { socket, packet: probe_packet(destination_cid, &source_cid), source_cid })
    }

    /// Sends the probes on their schedule and returns the first answer. Silence never
    /// returns: the caller's own timeout decides when silence is the answer.
    pub async fn answer(&self) -> Answer {
        let start = tokio::time::Instant::now();
        let mut buf = [0u8; 1500];
        let mut next = SCHEDULE.iter();
        let mut send_at = next.next().map(|d| start + *d);
        loop {
            tokio::select! {
                () = async { tokio::time::sleep_until(send_at.expect("guarded")).await }, if send_at.is_some() => {
                    if let Err(e) = self.socket.send(&self.packet).await
                        && e.kind() == io::ErrorKind::ConnectionRefused
                    {
                        return Answer::Refused;
                    }
                    send_at = next.next().map(|d| start + *d);
                }
                received = self.socket.recv(&mut buf) => match received {
                    Ok(n) if is_version_negotiation(&buf[..n], &self.source_cid) => return Answer::Quic,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Answer::Refused,
                    Err(e) => tracing::debug!("port probe: {e}"),
                },
            }
        }
    }
}

/// Whether opening a socket towards a peer failed because there is no route to it.
pub fn is_no_route(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable | io::ErrorKind::AddrNotAvailable
    )
}

/// A padded long-header packet of a reserved version, with the given connection IDs.
fn probe_packet(destination_cid: &[u8], source_cid: &[u8; CID_LEN]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(PROBE_BYTES);
    packet.push(LONG_HEADER);
    packet.extend_from_slice(&RESERVED_VERSION.to_be_bytes());
    packet.push(destination_cid.len() as u8);
    packet.extend_from_slice(destination_cid);
    packet.push(CID_LEN as u8);
    packet.extend_from_slice(source_cid);
    packet.resize(PROBE_BYTES, 0);
    packet
}

/// Whether `datagram` is a Version Negotiation packet answering our probe: long header,
/// version 0, and our source connection ID as its destination.
pub fn is_version_negotiation(datagram: &[u8], source_cid: &[u8]) -> bool {
    let [first, v0, v1, v2, v3, cid_len, rest @ ..] = datagram else { return false };
    first & 0x80 != 0
        && [*v0, *v1, *v2, *v3] == [0; 4]
        && usize::from(*cid_len) == source_cid.len()
        && rest.get(..source_cid.len()) == Some(source_cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_version_negotiation_for_our_probe_counts() {
        let ours = [7u8; CID_LEN];
        let mut answer = vec![0x80 | 0x2a, 0, 0, 0, 0, CID_LEN as u8];
        answer.extend_from_slice(&ours);
        answer.extend_from_slice(&[0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1]);
        assert!(is_version_negotiation(&answer, &ours));
        assert!(!is_version_negotiation(&answer, &[8u8; CID_LEN]), "another probe's answer");
        let mut versioned = answer.clone();
        versioned[4] = 1;
        assert!(!is_version_negotiation(&versioned, &ours), "not version 0");
        for cut in 0..6 + CID_LEN {
            assert!(!is_version_negotiation(&answer[..cut], &ours), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn a_quic_server_answers_and_a_closed_port_refuses() {
        let certs = tempfile::tempdir().unwrap();
        let identity = crate::net::identity::Identity::load_or_create(certs.path()).unwrap();
        let listener = crate::net::endpoint::listener("127.0.0.1:0".parse().unwrap(), &identity).unwrap();
        let probe = PortProbe::open(listener.local_addr().unwrap()).await.unwrap();
        assert_eq!(probe.packet.len(), PROBE_BYTES);
        assert_eq!(probe.answer().await, Answer::Quic);

        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap();
        drop(closed);
        assert_eq!(PortProbe::open(port).await.unwrap().answer().await, Answer::Refused);
    }
}
