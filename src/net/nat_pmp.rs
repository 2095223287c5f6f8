//! NAT-PMP (RFC 6886) messages: asking the router for its external address and for a UDP
//! port mapping, and reading its answers. Pure: the bytes in, a value or the reason out;
//! an answer is bounded input from the LAN and anything that is not exactly the expected
//! message is refused with what was wrong.

use std::net::Ipv4Addr;

/// The router's NAT-PMP (and PCP) port.
pub const PORT: u16 = 5351;
/// NAT-PMP's version number; PCP's is 2.
pub const VERSION: u8 = 0;
const OP_EXTERNAL_ADDRESS: u8 = 0;
const OP_MAP_UDP: u8 = 1;
/// A server's answer sets this bit in the request's opcode.
const ANSWER: u8 = 128;
const EXTERNAL_ADDRESS_ANSWER_BYTES: usize = 12;
const MAP_ANSWER_BYTES: usize = 16;

/// What the router answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Its external (public) address.
    ExternalAddress(Ipv4Addr),
    /// A UDP mapping: `external_port` on the router reaches `internal_port` here, for
    /// `lifetime_s` seconds (0: deleted).
    Mapped { internal_port: u16, external_port: u16, lifetime_s: u32 },
}

/// Why an answer is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatPmpError {
    #[error("a NAT-PMP answer of {0} bytes (expected 12 or 16)")]
    Length(usize),
    #[error("a NAT-PMP answer of version {0} (expected 0)")]
    Version(u8),
    #[error("a NAT-PMP answer to an operation never asked (opcode {0})")]
    Opcode(u8),
    /// The router said no: its result code, named.
    #[error("the router refused: {0}")]
    Refused(&'static str),
}

/// Asks for the router's external address.
pub fn external_address_request() -> [u8; 2] {
    [VERSION, OP_EXTERNAL_ADDRESS]
}

/// Asks the router to forward UDP `suggested_external` (0: any) to `internal_port` here for
/// `lifetime_s` seconds; a lifetime of 0 with an external port of 0 deletes the mapping.
pub fn map_request(internal_port: u16, suggested_external: u16, lifetime_s: u32) -> [u8; 12] {
    let mut message = [0u8; 12];
    message[0] = VERSION;
    message[1] = OP_MAP_UDP;
    message[4..6].copy_from_slice(&internal_port.to_be_bytes());
    message[6..8].copy_from_slice(&suggested_external.to_be_bytes());
    message[8..12].copy_from_slice(&lifetime_s.to_be_bytes());
    message
}

/// Reads an answer to either request.
pub fn parse_answer(bytes: &[u8]) -> Result<Answer, NatPmpError> {
    let &[version, opcode, r0, r1, ..] = bytes else { return Err(NatPmpError::Length(bytes.len())) };
    if version != VERSION {
        return Err(NatPmpError::Version(version));
    }
    let expected_length = match opcode {
        o if o == ANSWER | OP_EXTERNAL_ADDRESS => EXTERNAL_ADDRESS_ANSWER_BYTES,
        o if o == ANSWER | OP_MAP_UDP => MAP_ANSWER_BYTES,
        other => return Err(NatPmpError::Opcode(other)),
    };
    // A refusal may come short (RFC 6886 §3.5: the rest is undefined), so read it first.
    let result = u16::from_be_bytes([r0, r1]);
    if result != 0 {
        return Err(NatPmpError::Refused(result_name(result)));
    }
    if bytes.len() != expected_length {
        return Err(NatPmpError::Length(bytes.len()));
    }
    let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    Ok(if expected_length == EXTERNAL_ADDRESS_ANSWER_BYTES {
        Answer::ExternalAddress(Ipv4Addr::new(bytes[8], bytes[9], bytes[10], bytes[11]))
    } else {
        Answer::Mapped {
            internal_port: u16_at(8),
            external_port: u16_at(10),
            lifetime_s: u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
        }
    })
}

/// RFC 6886 §3.5's result codes, in words.
fn result_name(code: u16) -> &'static str {
    match code {
        1 => "unsupported version",
        2 => "not authorized (the router does not allow it; port mapping may be off in its settings)",
        3 => "network failure (the router has no external address yet)",
        4 => "out of resources (no ports left)",
        5 => "unsupported operation",
        _ => "an unknown result code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_and_everything_else_refused_with_the_reason() {
        let address = [0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 5];
        assert_eq!(parse_answer(&address), Ok(Answer::ExternalAddress(Ipv4Addr::new(203, 0, 113, 5))));
        let mapped = [0, 129, 0, 0, 0, 0, 0, 9, 0x04, 0xe6, 0x04, 0xe7, 0, 0, 2, 88];
        assert_eq!(
            parse_answer(&mapped),
            Ok(Answer::Mapped { internal_port: 1254, external_port: 1255, lifetime_s: 600 })
        );
        assert_eq!(parse_answer(&mapped[..15]), Err(NatPmpError::Length(15)));
        assert_eq!(parse_answer(&[mapped.as_slice(), &[0]].concat()), Err(NatPmpError::Length(17)));
        assert_eq!(parse_answer(&[2, 129, 0, 0]), Err(NatPmpError::Version(2)));
        assert_eq!(parse_answer(&[0, 1, 0, 0]), Err(NatPmpError::Opcode(1)), "our own request echoed");
        let refused = parse_answer(&[0, 129, 0, 2, 0, 0, 0, 9]).unwrap_err();
        assert!(refused.to_string().contains("not authorized"), "{refused}");
        assert_eq!(parse_answer(&[0]), Err(NatPmpError::Length(1)));
    }

    #[test]
    fn requests_are_laid_out_as_rfc_6886_says() {
        assert_eq!(external_address_request(), [0, 0]);
        assert_eq!(map_request(1254, 1254, 600), [0, 1, 0, 0, 0x04, 0xe6, 0x04, 0xe6, 0, 0, 2, 88]);
    }
}
