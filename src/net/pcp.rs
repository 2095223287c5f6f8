//! PCP (RFC 6887) MAP messages: asking the router to forward a UDP port, renewing and
//! deleting that mapping (the same nonce each time), and reading its answers. Pure: the
//! bytes in, a value or the reason out; an answer is bounded input from the LAN.

use std::net::{Ipv4Addr, Ipv6Addr};

/// PCP's version number (NAT-PMP's is 0).
pub const VERSION: u8 = 2;
const OP_MAP: u8 = 1;
/// A server's answer sets this bit in the opcode byte.
const ANSWER: u8 = 0x80;
const UDP: u8 = 17;
const HEADER_BYTES: usize = 24;
const MAP_BYTES: usize = HEADER_BYTES + 36;
/// The largest PCP message (RFC 6887 §7).
pub const MAX_MESSAGE_BYTES: usize = 1100;

/// A MAP answer that grants a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    pub nonce: [u8; 12],
    pub internal_port: u16,
    pub external_port: u16,
    /// The router's external address (an IPv4 address for a NAT).
    pub external_ip: Ipv6Addr,
    /// Seconds the mapping lasts (0: deleted).
    pub lifetime_s: u32,
}

/// Why an answer is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcpError {
    #[error("a PCP answer of {0} bytes (expected 60 to 1100, a multiple of 4)")]
    Length(usize),
    /// The router speaks another version: 0 is NAT-PMP only.
    #[error("the router answers in version {0} (PCP is 2)")]
    Version(u8),
    #[error("a PCP answer to an operation never asked (opcode byte {0:#04x})")]
    Opcode(u8),
    #[error("a PCP answer for another mapping (nonce or protocol differ)")]
    NotOurs,
    /// The router said no: its result code, named.
    #[error("the router refused: {0}")]
    Refused(&'static str),
}

/// Asks for UDP `internal_port` on `client` (this host's LAN address) to be reachable from
/// outside for `lifetime_s` seconds, at `suggested_external` if the router can. A lifetime of
/// 0 deletes the mapping made with the same nonce.
pub fn map_request(
    client: Ipv4Addr,
    nonce: [u8; 12],
    internal_port: u16,
    suggested_external: u16,
    lifetime_s: u32,
) -> [u8; MAP_BYTES] {
    let mut message = [0u8; MAP_BYTES];
    message[0] = VERSION;
    message[1] = OP_MAP;
    message[4..8].copy_from_slice(&lifetime_s.to_be_bytes());
    message[8..24].copy_from_slice(&client.to_ipv6_mapped().octets());
    message[24..36].copy_from_slice(&nonce);
    message[36] = UDP;
    message[40..42].copy_from_slice(&internal_port.to_be_bytes());
    message[42..44].copy_from_slice(&suggested_external.to_be_bytes());
    // No suggested external address: the IPv4-mapped all-zeros address.
    message[44..60].copy_from_slice(&Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets());
    message
}

/// Reads an answer to a MAP request made with `nonce`. Options after the MAP data are
/// allowed and skipped.
pub fn parse_map_answer(bytes: &[u8], nonce: &[u8; 12]) -> Result<Mapped, PcpError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(PcpError::Length(bytes.len()));
    }
    let &[version, opcode, _, result, ..] = bytes else { return Err(PcpError::Length(bytes.len())) };
    if version != VERSION {
        return Err(PcpError::Version(version));
    }
    if opcode != ANSWER | OP_MAP {
        return Err(PcpError::Opcode(opcode));
    }
    // A refusal may come without the MAP data (an unsupported version, say).
    if result != 0 {
        return Err(PcpError::Refused(result_name(result)));
    }
    if bytes.len() < MAP_BYTES || !bytes.len().is_multiple_of(4) {
        return Err(PcpError::Length(bytes.len()));
    }
    if bytes[24..36] != nonce[..] || bytes[36] != UDP {
        return Err(PcpError::NotOurs);
    }
    let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    let external: [u8; 16] = bytes[44..60].try_into().expect("length checked");
    Ok(Mapped {
        nonce: *nonce,
        internal_port: u16_at(40),
        external_port: u16_at(42),
        external_ip: Ipv6Addr::from(external),
        lifetime_s: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
    })
}

/// RFC 6887 §7.4's result codes, in words.
fn result_name(code: u8) -> &'static str {
    match code {
        1 => "unsupported version",
        2 => "not authorized (the router does not allow it; port mapping may be off in its settings)",
        3 => "malformed request",
        4 => "unsupported operation",
        5 => "unsupported option",
        6 => "malformed option",
        7 => "network failure (the router has no external address yet)",
        8 => "no resources",
        9 => "unsupported protocol",
        10 => "user quota exceeded",
        11 => "cannot provide the external port",
        12 => "address mismatch (a NAT between this host and the router)",
        13 => "too many remote peers",
        _ => "an unknown result code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; 12] = [9; 12];

    fn answer(result: u8) -> Vec<u8> {
        let mut bytes = map_request(Ipv4Addr::new(192, 168, 1, 20), NONCE, 1254, 1254, 600).to_vec();
        bytes[1] |= ANSWER;
        bytes[3] = result;
        bytes[8..24].fill(0); // epoch and reserved, in an answer
        bytes[42..44].copy_from_slice(&1300u16.to_be_bytes());
        bytes[44..60].copy_from_slice(&Ipv4Addr::new(203, 0, 113, 5).to_ipv6_mapped().octets());
        bytes
    }

    #[test]
    fn a_map_answer_is_read_with_its_options_skipped() {
        let mapped = parse_map_answer(&answer(0), &NONCE).unwrap();
        assert_eq!((mapped.internal_port, mapped.external_port, mapped.lifetime_s), (1254, 1300, 600));
        assert_eq!(mapped.external_ip.to_ipv4_mapped(), Some(Ipv4Addr::new(203, 0, 113, 5)));
        let with_option = [answer(0), vec![0x12, 0, 0, 4, 1, 2, 3, 4]].concat();
        assert_eq!(parse_map_answer(&with_option, &NONCE), Ok(mapped));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let good = answer(0);
        assert_eq!(parse_map_answer(&good[..59], &NONCE), Err(PcpError::Length(59)));
        assert_eq!(parse_map_answer(&vec![0; 1104], &NONCE), Err(PcpError::Length(1104)));
        assert_eq!(parse_map_answer(&[0, 129, 0, 1, 0, 0, 0, 0], &NONCE), Err(PcpError::Version(0)));
        assert_eq!(parse_map_answer(&map_request(Ipv4Addr::LOCALHOST, NONCE, 1, 1, 1), &NONCE).unwrap_err(), {
            PcpError::Opcode(OP_MAP)
        });
        assert_eq!(parse_map_answer(&good, &[8; 12]), Err(PcpError::NotOurs));
        let refused = parse_map_answer(&answer(2)[..24], &NONCE).unwrap_err();
        assert!(refused.to_string().contains("not authorized"), "{refused}");
    }

    #[test]
    fn a_request_is_laid_out_as_rfc_6887_says() {
        let request = map_request(Ipv4Addr::new(192, 168, 1, 20), NONCE, 1254, 1255, 600);
        assert_eq!(request[..8], [2, 1, 0, 0, 0, 0, 2, 88]);
        assert_eq!(request[8..24], Ipv4Addr::new(192, 168, 1, 20).to_ipv6_mapped().octets());
        assert_eq!((request[24..36].to_vec(), request[36]), (NONCE.to_vec(), 17));
        assert_eq!(request[40..44], [0x04, 0xe6, 0x04, 0xe7]);
        assert_eq!(request[44..60], Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets());
    }
}
