//! Checkpoints (C2SP tlog-checkpoint) signed as notes (C2SP signed-note) with Ed25519.
//!
//! A checkpoint's body is three lines — the log's origin, the tree size in decimal, the root
//! hash in standard base64 — each ending in a newline. The note adds a blank line and one
//! signature line per signer: `— <key name> <base64(key id ‖ signature)>`, where the key id is
//! the first four bytes of `SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key)` and the signature is
//! Ed25519 over the body. Public keys travel as verifier keys,
//! `<name>+<key id in hex>+<base64(0x01 ‖ public key)>`, so existing transparency-log tools read
//! both.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;

/// A tree head: the log's origin, its size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint is malformed: {0}")]
    Malformed(String),
    #[error("the key is malformed: {0}")]
    BadKey(String),
    #[error("no signature by key {0} on the checkpoint")]
    NotSigned(String),
    #[error("the signature by key {0} does not verify: the checkpoint was altered or forged")]
    BadSignature(String),
    #[error("the checkpoint is for origin `{found}`, not `{expected}`")]
    WrongOrigin { expected: String, found: String },
}

impl Checkpoint {
    /// The signed body: origin, size, root, each line ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses a checkpoint body (extension lines after the root are allowed and ignored).
    pub fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
        if !body.ends_with('\n') {
            return Err(bad("the body does not end with a newline"));
        }
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("the first line (the origin) is empty"));
        }
        let size = lines.next().ok_or_else(|| bad("no tree size line"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad("the tree size is not a decimal number"));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| bad("the tree size is out of range"))?;
        let root = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn key_id(name: &str, public: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The log's signing key.
#[derive(Debug)]
pub struct Signer {
    name: String,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl Signer {
    /// A new random key named `name` (the log's origin, by convention).
    pub fn generate(name: &str) -> Result<Signer, CheckpointError> {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| CheckpointError::BadKey("no randomness available".into()))?;
        Signer::from_seed(name, seed)
    }

    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, CheckpointError> {
        if !valid_name(name) {
            return Err(CheckpointError::BadKey(format!(
                "`{name}` is not a key name (no spaces or `+`)"
            )));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| CheckpointError::BadKey("not an Ed25519 seed".into()))?;
        Ok(Signer {
            name: name.to_owned(),
            seed,
            pair,
        })
    }

    /// Reads a signer key, `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Signer, CheckpointError> {
        let bad = |m: &str| CheckpointError::BadKey(m.to_owned());
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("a signer key starts with PRIVATE+KEY+"))?;
        // The key's base64 may itself hold `+`: the name and id never do.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(
                "a signer key has the form PRIVATE+KEY+<name>+<id>+<key>",
            ));
        };
        let key = STANDARD
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let seed: [u8; 32] = match key.split_first() {
            Some((&ALG_ED25519, seed)) => seed
                .try_into()
                .map_err(|_| bad("an Ed25519 seed is 32 bytes"))?,
            _ => return Err(bad("not an Ed25519 key")),
        };
        let signer = Signer::from_seed(name, seed)?;
        if id != hex(&signer.key_id()) {
            return Err(bad("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The signer key text (secret: stored with mode 0600).
    pub fn to_text(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex(&self.key_id()),
            STANDARD.encode(key)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, self.pair.public_key().as_ref())
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        let mut public = [0u8; 32];
        public.copy_from_slice(self.pair.public_key().as_ref());
        Verifier {
            name: self.name.clone(),
            public,
        }
    }

    /// Signs `checkpoint` as a note: body, blank line, signature line.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let signature = self.pair.sign(body.as_bytes());
        let mut blob = self.key_id().to_vec();
        blob.extend_from_slice(signature.as_ref());
        format!("{body}\n\u{2014} {} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// A public key that checks signed checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    public: [u8; 32],
}

impl Verifier {
    /// Reads a verifier key, `<name>+<key id in hex>+<base64(0x01 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<Verifier, CheckpointError> {
        let bad = |m: &str| CheckpointError::BadKey(m.to_owned());
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("a verifier key has the form <name>+<id>+<key>"));
        };
        if !valid_name(name) {
            return Err(bad("the key name is empty or has spaces"));
        }
        let key = STANDARD
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&ALG_ED25519, public)) => public
                .try_into()
                .map_err(|_| bad("an Ed25519 public key is 32 bytes"))?,
            _ => return Err(bad("not an Ed25519 key")),
        };
        let v = Verifier {
            name: name.to_owned(),
            public,
        };
        if id != hex(&v.key_id()) {
            return Err(bad("the key id does not match the key"));
        }
        Ok(v)
    }

    /// The verifier key text (public).
    pub fn to_text(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.public);
        format!(
            "{}+{}+{}",
            self.name,
            hex(&self.key_id()),
            STANDARD.encode(key)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, &self.public)
    }

    /// Checks a signed checkpoint note from the log `origin`: its body parses, and the
    /// signature lines by this key (name and key id) verify — at least one, and none fails.
    /// Signatures by other keys are ignored.
    pub fn verify(&self, note: &str, origin: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
        let split = note
            .find("\n\n")
            .ok_or_else(|| bad("no blank line between the body and the signatures"))?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let checkpoint = Checkpoint::parse_body(body)?;
        if checkpoint.origin != origin {
            return Err(CheckpointError::WrongOrigin {
                expected: origin.to_owned(),
                found: checkpoint.origin,
            });
        }
        if !signatures.ends_with('\n') {
            return Err(bad("the signature lines do not end with a newline"));
        }
        let id = self.key_id();
        let key = UnparsedPublicKey::new(&ED25519, &self.public);
        let mut verified = false;
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(bad("a signature line starts with an em dash and a space"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(bad("a signature line has a key name and a signature"));
            };
            let Ok(blob) = STANDARD.decode(blob) else {
                return Err(bad("a signature is not base64"));
            };
            if name != self.name || blob.len() < 4 || blob[..4] != id {
                continue;
            }
            // A known key's signature that fails rejects the whole note.
            if key.verify(body.as_bytes(), &blob[4..]).is_err() {
                return Err(CheckpointError::BadSignature(self.name.clone()));
            }
            verified = true;
        }
        if verified {
            Ok(checkpoint)
        } else {
            Err(CheckpointError::NotSigned(self.name.clone()))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "banli.example/audit".into(),
            size: 42,
            root: crate::merkle::leaf_hash(b"x"),
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_round_trips() {
        let signer = Signer::generate("banli.example/audit").expect("key");
        let note = signer.sign(&checkpoint());
        let v = Verifier::parse(&signer.verifier().to_text()).expect("verifier");
        assert_eq!(v.verify(&note, "banli.example/audit"), Ok(checkpoint()));
        let again = Signer::parse(&signer.to_text()).expect("signer");
        assert_eq!(again.sign(&checkpoint()), note, "Ed25519 is deterministic");
        assert!(note.starts_with("banli.example/audit\n42\n"));
        assert!(note.contains("\n\n\u{2014} banli.example/audit "));
    }

    #[test]
    fn altered_or_forged_checkpoints_are_refused() {
        let signer = Signer::generate("log").expect("key");
        let v = signer.verifier();
        let note = signer.sign(&checkpoint_for("log", 7));
        // Another size under the same signature.
        let altered = note.replacen("\n7\n", "\n8\n", 1);
        assert_eq!(
            v.verify(&altered, "log"),
            Err(CheckpointError::BadSignature("log".into()))
        );
        // Signed by another key of the same name.
        let forger = Signer::generate("log").expect("key");
        assert_eq!(
            v.verify(&forger.sign(&checkpoint_for("log", 7)), "log"),
            Err(CheckpointError::NotSigned("log".into()))
        );
        assert!(matches!(
            v.verify(&note, "other"),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        assert!(matches!(
            v.verify("log\n7\n", "log"),
            Err(CheckpointError::Malformed(_))
        ));
        assert!(matches!(
            Checkpoint::parse_body("log\n07\nAAAA\n"),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[test]
    fn keys_with_a_wrong_id_or_form_are_refused() {
        let signer = Signer::generate("log").expect("key");
        let text = signer.verifier().to_text();
        let (_, rest) = text.split_once('+').expect("name");
        assert!(Verifier::parse(&format!("other+{rest}")).is_err());
        assert!(Verifier::parse("log+00000000+AQ==").is_err());
        assert!(Signer::parse(&text).is_err());
        assert!(Signer::from_seed("a name", [0; 32]).is_err());
    }

    fn checkpoint_for(origin: &str, size: u64) -> Checkpoint {
        Checkpoint {
            origin: origin.into(),
            size,
            root: crate::merkle::leaf_hash(&size.to_be_bytes()),
        }
    }
}
