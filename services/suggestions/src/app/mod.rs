//! The application layer: one handler per use case, called by both REST and gRPC.
//!
//! Each change loads the suggestion, checks the policy and the expected version, lets the domain
//! decide, and appends the events with their outbox rows in one transaction.
//!
//! Here: the state, authentication and idempotency; `directory` (sessions, deputies, agencies,
//! divisions, keys), `calendar` (days, deadlines, recomputation), `suggestions` (submit, read,
//! list, and every command).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use banli_calendar::{Calendar, Deadline, OutOfRangePolicy};
use banli_domain::directory::{Agency, Deputy, Division, Session};
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, Role, RuleProfile, Rules};
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::command::{SuggestionCommand, Target};
use crate::dto::*;
use crate::error::{AppError, ErrorCode};
use crate::policy::{self, Action, Principal, Visibility};
use crate::store::{InboxEntry, ListFilter, NewEvent, Store, StoreError};
use banli_api::cache::Bounded;

pub use banli_api::Clock;

mod calendar;
mod directory;
mod documents;
mod public;
mod suggestions;
pub mod users;

pub use public::{MAX_PUBLIC_PAGE, PublicReplyPage, PublicReplyView, document_html};
pub use users::{
    LOCKOUT, MAX_FAILED_LOGINS, MIN_PASSWORD_CHARS, SESSION_IDLE, SESSION_LIFETIME, SETUP_TTL,
    SignedIn,
};

/// What became of a command applied for another service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteOutcome {
    Applied,
    /// The guards refused it now; the refusal is recorded as an event.
    Refused(String),
    /// The command changed nothing; nothing was written.
    NoChange,
    /// Its effect had been recorded before.
    Duplicate,
    UnknownSuggestion,
}

/// Everything a use case needs.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    profile: RuleProfile,
    calendar: Calendar,
    clock: Clock,
    /// The last written state of recently changed suggestions (commands start from it).
    recent: Bounded<SuggestionId, Arc<Suggestion>>,
    /// Authenticated keys, by the SHA-256 of the token, for [`KEY_CACHE_TTL`].
    keys: Bounded<String, Principal>,
    /// Sessions never change once created.
    sessions: Bounded<SessionId, Session>,
    /// Agencies' approval chains, for [`CHAIN_CACHE_TTL`].
    chains: Bounded<AgencyId, ApprovalChain>,
    /// The document store (set once when the service is built with one).
    documents: std::sync::OnceLock<banli_documents::Documents>,
}

/// The most co-signers one suggestion may name.
pub const MAX_CO_SIGNERS: usize = 500;

/// How long an authenticated key is trusted without asking the database again. A key revoked
/// through this process is forgotten at once; one revoked elsewhere stops working within this.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// How long an agency's approval chain is used without reading it again. A chain set through
/// this process applies at once; one set through another process of the suggestions service
/// applies to the replies drafted after this.
pub const CHAIN_CACHE_TTL: Duration = Duration::from_secs(2);

/// The most items one page returns.
pub const MAX_PAGE: u32 = 200;

impl App {
    pub fn new(store: Store, profile: RuleProfile, calendar: Calendar, clock: Clock) -> App {
        App {
            inner: Arc::new(Inner {
                store,
                profile,
                calendar,
                clock,
                recent: Bounded::new(2_000, None),
                keys: Bounded::new(10_000, Some(KEY_CACHE_TTL)),
                sessions: Bounded::new(1_000, None),
                chains: Bounded::new(10_000, Some(CHAIN_CACHE_TTL)),
                documents: std::sync::OnceLock::new(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn today(&self) -> Date {
        self.inner.clock.today()
    }

    pub fn profile(&self) -> &RuleProfile {
        &self.inner.profile
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            profile: &self.inner.profile,
            calendar: &self.inner.calendar,
        }
    }

    /// Resolves a bearer token to a principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let digest: String = Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(p) = self.inner.keys.get(&digest) {
            return Ok(p);
        }
        let key = self.store().authenticate(token).await?.ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthenticated,
                "the API key is unknown or revoked; create one with `banli keys create`",
            )
        })?;
        let p = Principal {
            position: key.position,
            key_id: key.id,
            role: key.role,
            agency: key.agency_id,
            deputy: key.deputy_id,
            reference: None,
            client_cert: key.client_cert,
        };
        self.inner.keys.put(digest, p.clone());
        Ok(p)
    }

    /// [`Self::authenticate`] as a port, for whatever checks keys against this service's
    /// (metrics, reflection, a coordination service in the same process in tests).
    pub fn authenticator(&self) -> banli_api::Authenticator {
        let app = self.clone();
        std::sync::Arc::new(move |token: String| {
            let app = app.clone();
            Box::pin(async move { app.authenticate(&token).await })
        })
    }

    // ---- idempotency ----

    /// Runs `f` once per (caller, key, request): a replay returns the stored response.
    pub async fn idempotent<F, Fut>(
        &self,
        p: &Principal,
        key: Option<&str>,
        request_hash: &str,
        f: F,
    ) -> Result<(u16, String), AppError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, String), AppError>>,
    {
        let store = self.store();
        banli_api::idempotent(
            store.db(),
            store.idempotency_keys(),
            p,
            key,
            request_hash,
            f,
        )
        .await
    }
}

/// How much of the co-handling opinions a caller reads: the office and auditors all of them, an
/// agency those [`Suggestion::opinion_readers`] gives it, a deputy none.
fn opinion_reader(p: &Principal) -> banli_domain::suggestion::OpinionReader {
    use banli_domain::suggestion::OpinionReader;
    match (p.role, p.agency) {
        (Role::AssigningOffice | Role::Auditor, _) => OpinionReader::All,
        (r, Some(a)) if r.is_agency_role() => OpinionReader::Agency(a),
        _ => OpinionReader::Nobody,
    }
}

/// Page tokens are opaque to clients: the last id, in a versioned wrapper.
pub fn encode_token(id: Uuid) -> String {
    format!("p1.{}", id.simple())
}

pub fn decode_token(token: &str) -> Result<SuggestionId, AppError> {
    token
        .strip_prefix("p1.")
        .and_then(|t| Uuid::try_parse(t).ok())
        .map(SuggestionId)
        .ok_or_else(|| {
            AppError::malformed(
                "page_token is not a token this API issued; pass next_page_token back unchanged",
            )
        })
}
