//! The safety code: twelve digits both people see during a call and can read to each other.
//! It is derived from the TLS session's exported keying material and both certificates'
//! fingerprints, so a man in the middle (who must run two TLS sessions, one with each side)
//! shows each side a different code.

use super::identity::Fingerprint;

/// The TLS exporter label (RFC 8446 section 7.5).
const EXPORTER_LABEL: &[u8] = b"EXPORTER-chat-safety-code-v1";

/// The code for this connection, or `None` if the TLS session cannot export keys.
pub fn safety_code(conn: &quinn::Connection, local: &Fingerprint, remote: &Fingerprint) -> Option<String> {
    let mut secret = [0u8; 32];
    conn.export_keying_material(&mut secret, EXPORTER_LABEL, b"").ok()?;
    Some(code_from(&secret, local, remote))
}

/// Twelve digits in four groups from the exported secret and both fingerprints (in a fixed
/// order, so both ends compute the same code).
pub fn code_from(secret: &[u8; 32], a: &Fingerprint, b: &Fingerprint) -> String {
    let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(secret);
    ctx.update(&first.0);
    ctx.update(&second.0);
    let digest = ctx.finish();
    let n = u64::from_be_bytes(digest.as_ref()[..8].try_into().expect("8 bytes")) % 1_000_000_000_000;
    let digits = format!("{n:012}");
    digits.as_bytes().chunks(3).map(|c| std::str::from_utf8(c).expect("ASCII")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_compute_the_same_code_and_anything_else_changes_it() {
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let secret = [7u8; 32];
        let code = code_from(&secret, &a, &b);
        assert_eq!(code, code_from(&secret, &b, &a));
        assert_eq!(code.len(), 15);
        assert!(code.split(' ').all(|g| g.len() == 3 && g.bytes().all(|c| c.is_ascii_digit())), "{code}");
        assert_ne!(code, code_from(&[8u8; 32], &a, &b), "another TLS session");
        assert_ne!(code, code_from(&secret, &a, &Fingerprint([3; 32])), "another certificate");
    }
}
