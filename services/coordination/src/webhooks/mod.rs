//! Webhooks (事件推送): per agency, endpoints that receive the agency's feed as signed POSTs,
//! managed by the agency's own office (`agency_admin`). Each delivery is one feed item, in feed
//! order per endpoint, signed (see [`sign`]); failures are retried with exponential backoff and
//! jitter, and an endpoint failing for longer than the policy allows is disabled, with a
//! `webhook.disabled` event in the agency's feed. Every attempt is in the endpoint's delivery
//! log; a replay moves the endpoint back to an earlier cursor; a secret rotation keeps the old
//! secret signing beside the new one for an overlap window.

mod api;
pub mod deliver;
/// The egress policy and the signature, shared with the notification service's SMS gateway.
pub use banli_egress::{check_url, policy as egress, sign};
mod store;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use store::{DeliveryRow, EndpointRow};

/// The key that seals the endpoints' signing secrets at rest (AES-256-GCM). Signing needs the
/// secrets themselves, so they are sealed rather than hashed; the key lives outside the
/// database (`data/webhook-secrets.key`, or the `webhook_key` setting).
pub struct SecretKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Random bytes from the system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "the system random source failed".to_owned())?;
    Ok(b)
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

impl SecretKey {
    pub fn new(bytes: &[u8; 32]) -> Result<SecretKey, String> {
        let key =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| "not an AES-256 key".to_owned())?;
        Ok(SecretKey {
            key: LessSafeKey::new(key),
        })
    }

    /// The key as its file holds it: 64 hexadecimal digits.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let bytes = unhex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| "a webhook key is 64 hexadecimal digits (32 bytes)".to_owned())?;
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes);
        SecretKey::new(&k)
    }

    /// A new key's file text.
    pub fn generate_text() -> Result<String, String> {
        Ok(hex(&random_bytes::<32>()?))
    }

    /// `nonce ‖ ciphertext ‖ tag`, hexadecimal, bound to `endpoint` (its id, the associated
    /// data): a sealed secret copied onto another endpoint's row does not open there.
    pub fn seal(&self, plain: &[u8], endpoint: &str) -> Result<String, String> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(endpoint.as_bytes()),
                &mut buf,
            )
            .map_err(|_| "sealing failed".to_owned())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(hex(&out))
    }

    /// Opens a secret sealed for `endpoint`. Secrets sealed before they were bound to their
    /// endpoint (no associated data) still open, so that existing endpoints keep delivering;
    /// a rotation replaces them with bound ones.
    pub fn open(&self, sealed: &str, endpoint: &str) -> Result<Vec<u8>, String> {
        let bytes = unhex(sealed)
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(|| "a sealed webhook secret is damaged".to_owned())?;
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(nonce);
        for aad in [endpoint.as_bytes(), &[]] {
            let mut buf = ct.to_vec();
            if let Ok(plain) =
                self.key
                    .open_in_place(Nonce::assume_unique_for_key(n), Aad::from(aad), &mut buf)
            {
                return Ok(plain.to_vec());
            }
        }
        Err(
            "a webhook secret cannot be opened with this webhook key for this endpoint (was the key file replaced, or the row copied from another endpoint?)"
                .to_owned(),
        )
    }
}

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "webhook-secrets.key";

/// Reads the key at `path`, or creates one there (mode 0600) if the file does not exist.
pub fn load_or_create_key(path: &std::path::Path) -> Result<SecretKey, String> {
    use std::io::Write;
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::parse(&text).map_err(|e| format!("{shown}: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = SecretKey::generate_text()?;
            // A first start of one service may come before its data directory exists.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                banli_db::create_private_dir(dir).map_err(|e| {
                    format!("cannot create the directory of the webhook key {shown}: {e}")
                })?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options
                .open(path)
                .map_err(|e| format!("cannot write the webhook key {shown}: {e}"))?;
            f.write_all(format!("{text}\n").as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("cannot write the webhook key {shown}: {e}"))?;
            SecretKey::parse(&text)
        }
        Err(e) => Err(format!("cannot read the webhook key {shown}: {e}")),
    }
}

/// A new signing secret as shown to the agency once: `whsec_` and 48 hexadecimal digits.
pub fn new_secret() -> Result<String, String> {
    Ok(format!("whsec_{}", hex(&random_bytes::<24>()?)))
}

/// What an agency sends to create an endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http://` or `https://`.
    pub url: String,
    /// Event types to deliver (`suggestion.replied`, …); empty or absent: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// Where deliveries start: a feed cursor, `now` (default) or `start`.
    #[serde(default)]
    pub after: Option<String>,
}

/// A change to an endpoint (`If-Match` its version).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// `active` re-enables a disabled endpoint (its failures are forgotten); `disabled` pauses it.
    pub state: Option<String>,
}

/// A secret rotation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret keeps signing beside the new one (0 to 168; default 24).
    #[serde(default)]
    pub overlap_hours: Option<u32>,
}

/// A replay: deliver again everything after `after`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayWebhook {
    /// A cursor of this agency's feed, or `start`.
    pub after: String,
}

/// An endpoint as its agency sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub agency_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    /// `active` or `disabled`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The feed position delivered up to.
    pub cursor: String,
    /// Consecutive failed attempts.
    pub failures: u32,
    /// RFC 3339: the next attempt, while failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub version: u64,
    /// Shown once, when created or rotated: keep it; it signs every delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// The feed cursor of the event.
    pub cursor: String,
    pub attempt: u32,
    /// The receiver's HTTP status; absent when it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `delivered`, `http_status` (a non-2xx answer; redirects are not followed), `timeout`,
    /// `refused` (no connection, or the name did not resolve), `tls_error`, `not_allowed` (the
    /// address is outside the server's webhook egress policy) or `no_secret`.
    pub outcome: String,
    /// What the outcome means and what to check; never the server's internal error text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    /// RFC 3339.
    pub at: String,
    pub ok: bool,
}

/// Unix milliseconds as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_seal_and_open_only_under_their_key() {
        let k = SecretKey::parse(&SecretKey::generate_text().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let other = SecretKey::parse(&"ab".repeat(32)).unwrap_or_else(|e| panic!("{e}"));
        let sealed = k
            .seal(b"whsec_123", "ep-1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!sealed.contains("whsec"));
        assert_eq!(k.open(&sealed, "ep-1").as_deref(), Ok(&b"whsec_123"[..]));
        assert!(other.open(&sealed, "ep-1").is_err());
        assert!(k.open("00", "ep-1").is_err());
        // Bound to its endpoint: copied onto another endpoint's row, it does not open.
        assert!(k.open(&sealed, "ep-2").is_err());
        // Two seals of one secret differ (fresh nonces).
        assert_ne!(sealed, k.seal(b"whsec_123", "ep-1").unwrap_or_default());
        // A secret sealed before binding (no associated data) still opens.
        let nonce = [7u8; NONCE_LEN];
        let mut legacy = b"whsec_old".to_vec();
        k.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut legacy,
            )
            .unwrap_or_else(|_| panic!("sealed"));
        let legacy = hex(&[&nonce[..], &legacy].concat());
        assert_eq!(k.open(&legacy, "ep-9").as_deref(), Ok(&b"whsec_old"[..]));
        assert!(SecretKey::parse("short").is_err());
    }

    #[test]
    fn the_key_is_created_with_its_directory_and_read_back() {
        let dir = std::env::temp_dir().join(format!("banli-whkey-{}", uuid::Uuid::now_v7()));
        let path = dir.join("not-yet").join(KEY_FILE);
        let made = load_or_create_key(&path).unwrap_or_else(|e| panic!("{e}"));
        let again = load_or_create_key(&path).unwrap_or_else(|e| panic!("{e}"));
        let sealed = made.seal(b"whsec_1", "ep").unwrap_or_default();
        assert_eq!(again.open(&sealed, "ep").as_deref(), Ok(&b"whsec_1"[..]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_http_and_https_urls() {
        assert!(check_url("https://agency.example/banli").is_ok());
        // The form only: the egress policy refuses this address.
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        for bad in [
            "ftp://agency.example/",
            "file:///etc/passwd",
            "agency.example/hook",
            "https://user:pw@agency.example/",
            "javascript:alert(1)",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
