//! The signature of a webhook delivery, and how a receiver checks it.
//!
//! Each delivery carries `Banli-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256,
//! under each of the endpoint's current secrets (two while a rotated secret overlaps the new
//! one), over the bytes `<t>.<raw body>`. A receiver recomputes the HMAC with its secret over
//! the timestamp it received, a dot and the body exactly as received, compares in constant time
//! with any `v1` value, and refuses timestamps more than five minutes away from its clock (a
//! replayed delivery).

use ring::hmac;

/// The header carrying the timestamp and the signatures.
pub const SIGNATURE_HEADER: &str = "banli-signature";
/// The event's id: the same event delivered again (a retry, a replay) has the same id.
pub const DELIVERY_HEADER: &str = "banli-delivery";
/// The event's type, e.g. `suggestion.replied`.
pub const EVENT_HEADER: &str = "banli-event";
/// How far a delivery's timestamp may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// The signature header for `body` sent at `t` under `secrets` (newest first).
pub fn signature_header(secrets: &[&[u8]], t: i64, body: &[u8]) -> String {
    let mut out = format!("t={t}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&hex(sign(s, t, body).as_ref()));
    }
    out
}

fn sign(secret: &[u8], t: i64, body: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no `t=` timestamp in the signature header")]
    NoTimestamp,
    #[error("the timestamp is more than {TOLERANCE_SECONDS} s from now")]
    Stale,
    #[error("no `v1=` signature matches this secret")]
    Mismatch,
}

/// A receiver's check of a delivery: the header as received, its secret, the raw body, its
/// clock (unix seconds).
pub fn verify(header: &str, secret: &[u8], body: &[u8], now: i64) -> Result<(), VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.extend(unhex(v)),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::NoTimestamp)?;
    if (now - t).abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    if sigs.iter().any(|s| hmac::verify(&key, &signed, s).is_ok()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_nothing_else_does() {
        let body = br#"{"event_type":"suggestion.replied"}"#;
        let h = signature_header(&[b"new-secret", b"old-secret"], 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="), "{h}");
        assert_eq!(h.matches("v1=").count(), 2);
        // Either secret of the overlap verifies.
        assert_eq!(verify(&h, b"new-secret", body, 1_700_000_100), Ok(()));
        assert_eq!(verify(&h, b"old-secret", body, 1_700_000_100), Ok(()));
        // Another secret, a changed body, a changed timestamp, an old delivery: refused.
        assert_eq!(
            verify(&h, b"guess", body, 1_700_000_100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&h, b"new-secret", b"{}", 1_700_000_100),
            Err(VerifyError::Mismatch)
        );
        let moved = h.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify(&moved, b"new-secret", body, 1_700_000_100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&h, b"new-secret", body, 1_700_001_000),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify("v1=00", b"new-secret", body, 0),
            Err(VerifyError::NoTimestamp)
        );
    }

    /// A known answer, computed independently:
    /// `printf '%s' '1700000000.{}' | openssl dgst -sha256 -hmac secret`.
    #[test]
    fn known_answer() {
        let h = signature_header(&[b"secret"], 1_700_000_000, b"{}");
        assert_eq!(
            h,
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
