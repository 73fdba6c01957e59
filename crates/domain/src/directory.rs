//! The directory: sessions, deputies, agencies and divisions.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::error::DomainError;
use crate::ids::*;
use crate::suggestion::Body;

/// 届次/会次: one session of a People's Congress (or CPPCC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub body: Body,
    /// 届: the term, e.g. 13.
    pub term: u32,
    /// 次: the session within the term, e.g. 3.
    pub number: u32,
    pub name: String,
    pub opens_on: Date,
    pub closes_on: Date,
}

impl Session {
    /// Validates a session: a name, a positive term and number, and closing not before opening.
    pub fn new(
        id: SessionId,
        body: Body,
        term: u32,
        number: u32,
        name: &str,
        opens_on: Date,
        closes_on: Date,
    ) -> Result<Session, DomainError> {
        let invalid = |field, reason: &str| DomainError::Invalid {
            command: "create a session",
            field,
            reason: reason.to_owned(),
        };
        if !(1..=99).contains(&term) {
            return Err(invalid("term", "must be between 1 and 99"));
        }
        if !(1..=99).contains(&number) {
            return Err(invalid("number", "must be between 1 and 99"));
        }
        if name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if closes_on < opens_on {
            return Err(invalid("closes_on", "is before opens_on"));
        }
        Ok(Session {
            id,
            body,
            term,
            number,
            name: name.trim().to_owned(),
            opens_on,
            closes_on,
        })
    }

    /// Whether an item received on `date` is a session item (大会期间) or a recess item (闭会期间).
    pub fn is_in_session(&self, date: Date) -> bool {
        self.opens_on <= date && date <= self.closes_on
    }
}

/// 代表. `contact` is personal data: it never goes into events or the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deputy {
    pub id: DeputyId,
    pub name: String,
    /// 代表团: the delegation the deputy belongs to.
    pub delegation: String,
    pub contact: String,
}

/// 单位: a handling agency, or the assigning office (交办机关).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    pub id: AgencyId,
    pub name: String,
    pub assigning_office: bool,
}

/// 处室: a division of an agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Division {
    pub id: DivisionId,
    pub agency_id: AgencyId,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn sessions_are_validated() {
        let ok = Session::new(
            SessionId::new(),
            Body::Npc,
            13,
            3,
            " 13th PC, 3rd session ",
            date!(2020 - 01 - 10),
            date!(2020 - 01 - 16),
        )
        .expect("valid");
        assert_eq!(ok.name, "13th PC, 3rd session");
        assert!(ok.is_in_session(date!(2020 - 01 - 12)));
        assert!(!ok.is_in_session(date!(2020 - 03 - 01)));
        let err = Session::new(
            SessionId::new(),
            Body::Npc,
            13,
            3,
            "x",
            date!(2020 - 01 - 16),
            date!(2020 - 01 - 10),
        )
        .expect_err("backwards");
        assert!(matches!(
            err,
            DomainError::Invalid {
                field: "closes_on",
                ..
            }
        ));
        assert!(
            Session::new(
                SessionId::new(),
                Body::Cppcc,
                0,
                1,
                "x",
                date!(2020 - 01 - 10),
                date!(2020 - 01 - 10)
            )
            .is_err()
        );
    }
}

/// What the suggestions service publishes of its directory (名录) so that every other service
/// keeps a replica of its own instead of reading the suggestions service's tables: agencies
/// (with the assigning office) and API keys. Each event carries the whole record, so a replica
/// upserts it; a revocation is never undone by an older copy arriving late.
pub mod published {
    use serde::{Deserialize, Serialize};

    use crate::actor::Role;
    use crate::ids::{AgencyId, DeputyId};

    /// The schema version of the directory events' payloads.
    pub const SCHEMA_VERSION: u32 = 1;
    /// An agency was registered (or its record is published again).
    pub const AGENCY_REGISTERED: &str = "directory.agency_registered";
    /// An API key was issued (or its record is published again).
    pub const KEY_ISSUED: &str = "directory.key_issued";
    /// An API key was revoked.
    pub const KEY_REVOKED: &str = "directory.key_revoked";

    /// An agency as other services know it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Agency {
        pub id: AgencyId,
        pub name: String,
        pub assigning_office: bool,
    }

    /// An API key as other services check it: the secret only as its SHA-256 hash (of a
    /// 244-bit random secret: the hash cannot be turned back into a token), never the token.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Key {
        pub id: uuid::Uuid,
        pub secret_hash: String,
        pub role: Role,
        pub agency_id: Option<AgencyId>,
        pub deputy_id: Option<DeputyId>,
        /// The SHA-256 fingerprint (hex) of the client certificate the key is bound to.
        pub client_cert: Option<String>,
        pub revoked: bool,
    }

    /// A key's row as stored (text columns): its role, agency and deputy as text.
    #[derive(Debug, Clone)]
    pub struct StoredKey {
        pub id: String,
        pub secret_hash: String,
        pub role: String,
        pub agency_id: Option<String>,
        pub deputy_id: Option<String>,
        pub client_cert: Option<String>,
        pub revoked: bool,
    }

    impl TryFrom<StoredKey> for Key {
        /// What cannot be read, e.g. "api key …: role".
        type Error = String;

        fn try_from(r: StoredKey) -> Result<Key, String> {
            let bad = |what: &str| format!("api key {}: {what}", r.id);
            Ok(Key {
                id: r.id.parse().map_err(|_| bad("id"))?,
                role: r.role.parse().map_err(|_| bad("role"))?,
                agency_id: r
                    .agency_id
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|_| bad("agency"))?,
                deputy_id: r
                    .deputy_id
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|_| bad("deputy"))?,
                secret_hash: r.secret_hash,
                client_cert: r.client_cert,
                revoked: r.revoked,
            })
        }
    }
}
