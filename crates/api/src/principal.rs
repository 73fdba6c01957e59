//! Who is calling.

use banli_domain::ids::{AgencyId, DeputyId};
use banli_domain::suggestion::SignerPosition;
use banli_domain::{Actor, Role};
use uuid::Uuid;

/// The authenticated caller: an API key and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: Uuid,
    pub role: Role,
    pub agency: Option<AgencyId>,
    pub deputy: Option<DeputyId>,
    /// The agency's own reference for this request (`Reference-Id`; gRPC metadata
    /// `reference-id`): a change with a reference the agency used before is not made again.
    pub reference: Option<String>,
    /// The SHA-256 fingerprint (hex) of the client certificate the key is bound to: the key
    /// is accepted only over a connection that presented it ([`Principal::presented`]).
    pub client_cert: Option<String>,
    /// The position the key holds in its agency (for the steps of an approval chain).
    pub position: Option<SignerPosition>,
}

/// The header (gRPC: metadata) that carries an agency's own reference id.
pub const REFERENCE_HEADER: &str = "reference-id";

/// Checks a reference id: 1 to 255 visible ASCII characters.
pub fn check_reference(text: &str) -> Result<String, crate::AppError> {
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(crate::AppError::malformed(
            "Reference-Id must be 1 to 255 visible ASCII characters (your system's own id for the change)",
        ));
    }
    Ok(text.to_owned())
}

impl Principal {
    /// The same caller with the request's reference id.
    pub fn with_reference(mut self, reference: Option<String>) -> Principal {
        self.reference = reference;
        self
    }

    pub fn actor(&self) -> Actor {
        Actor {
            role: self.role,
            agency: self.agency,
            deputy: self.deputy,
            position: self.position,
        }
    }
}

/// Resolves a bearer token to a principal. The keys live with the suggestions service; a
/// service in the same process asks its application, a service on its own reads them from the
/// shared database.
pub type Authenticator = std::sync::Arc<
    dyn Fn(
            String,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Principal, crate::AppError>> + Send>,
        > + Send
        + Sync,
>;

/// The shape of an API key's token, `banli_<key id>_<secret>`, and how its secret is kept: as
/// a SHA-256 hash, compared in constant time. Keys are issued by the suggestions service; every
/// service checks them against its own copy of the hashes.
pub mod token {
    use sha2::{Digest, Sha256};
    use uuid::Uuid;

    const PREFIX: &str = "banli_";

    /// A new key's token and the hash to store, for key `id`.
    pub fn issue(id: Uuid) -> (String, String) {
        // Two v4 UUIDs: 244 bits from the operating system's CSPRNG.
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        (
            format!("{PREFIX}{}_{secret}", id.simple()),
            secret_hash(&secret),
        )
    }

    /// The hex SHA-256 of a secret.
    pub fn secret_hash(secret: &str) -> String {
        let digest = Sha256::digest(secret.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Constant-time comparison, so that timing does not reveal how much of a hash matched.
    pub fn same(a: &str, b: &str) -> bool {
        a.len() == b.len()
            && a.bytes()
                .zip(b.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
    }

    /// Splits `banli_<id>_<secret>`: the key id and the secret, or `None` for any other shape.
    pub fn parse(token: &str) -> Option<(Uuid, &str)> {
        let rest = token.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        if secret.len() < 32 {
            return None;
        }
        Some((Uuid::try_parse(id).ok()?, secret))
    }

    /// Whether `secret` is the one whose hash is `hash`.
    pub fn verifies(secret: &str, hash: &str) -> bool {
        same(&secret_hash(secret), hash)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tokens_parse_only_in_their_own_shape() {
            let id = Uuid::now_v7();
            let secret = "a".repeat(64);
            let token = format!("banli_{}_{secret}", id.simple());
            assert_eq!(parse(&token), Some((id, secret.as_str())));
            assert_eq!(parse("Bearer x"), None);
            assert_eq!(parse(&format!("banli_{}_short", id.simple())), None);
            assert_eq!(
                parse("banli_notauuid_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                None
            );
            assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
            let (token, hash) = issue(id);
            let (parsed, secret) = parse(&token).expect("an issued token parses");
            assert!(parsed == id && verifies(secret, &hash) && !verifies("x", &hash));
        }
    }
}
