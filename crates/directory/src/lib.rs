//! The directory replica (名录副本): what a service other than the suggestions service knows of
//! agencies, the assigning office and API keys, kept in its own tables from the `directory.*`
//! events the suggestions service publishes — and authentication against it. No service reads
//! another's tables: a coordination or follow-up process given a database of its own learns the
//! keys and agencies from the event log, and a revocation reaches it as an event (its open
//! streams end when it arrives).
//!
//! Until the directory has arrived the service is not ready: `/readyz` answers 503 naming it,
//! and a call answers 503 `unavailable` — never 401 for a key that is valid but not here yet.
//! A key issued moments ago (its id is a UUIDv7: the token says when it was issued) is waited
//! for briefly, then answered 503 with "retry"; an unknown key older than that is 401.
//!
//! Must never: write anything but its own tables and inbox; hold a token or a secret (only the
//! hashes the suggestions service publishes).

use std::sync::Arc;
use std::time::Duration;

use banli_api::cache::Bounded;
use banli_api::{AppError, Authenticator, ErrorCode, Principal, token};
use banli_db::{Db, Pool, WriterStopped, on_pool};
use banli_domain::directory::published::{
    AGENCY_REGISTERED, Agency, KEY_ISSUED, KEY_REVOKED, Key, SCHEMA_VERSION, StoredKey,
};
use banli_domain::ids::AgencyId;
use banli_eventlog::inbox::Inbox;
use banli_eventlog::{Apply, Envelope, Handled, Order, Settled, Step};
use tokio::sync::watch;
use uuid::Uuid;

/// The event types the directory consumers read.
pub const FILTER: &str = "directory.";

/// How long after its issue a key that has not arrived is answered "retry" (503), not 401.
pub const NEW_KEY_WINDOW: Duration = Duration::from_secs(120);

/// How long one call waits for a newly issued key to arrive before answering 503.
const NEW_KEY_WAIT: Duration = Duration::from_secs(2);

/// How many calls may wait for new keys at once: anyone can send a token whose id looks
/// recent, so beyond this a call is answered 503 "retry" at once instead of holding a
/// connection.
const NEW_KEY_WAITERS: usize = 32;

/// What can go wrong reading or writing the replica.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Writer(#[from] WriterStopped),
    #[error("the directory replica holds an unreadable row: {0}")]
    Corrupt(String),
}

struct Queries {
    agency: String,
    key: String,
    get_key: String,
    agencies: String,
    office: String,
    counts: String,
}

/// One service's replica of the directory.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

struct Inner {
    service: &'static str,
    consumer: &'static str,
    db: Db,
    inbox: Inbox,
    q: Queries,
    /// Bumped after every applied batch: a call waiting for a new key looks again.
    applied: watch::Sender<u64>,
    /// Authenticated tokens (by the hash of the whole token) for a second: a revocation is
    /// honoured within a second of arriving.
    cache: Bounded<String, Principal>,
    /// Permits for calls waiting for a new key ([`NEW_KEY_WAITERS`]).
    waiters: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("service", &self.inner.service)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// `service` names the tables (`coordination` → `coordination_directory_keys`, …) and
    /// `consumer` the durable consumer on the bus (e.g. `coordination-directory`): fixed
    /// identifiers, never input. Writes go through `db` (on SQLite, the service's one writer).
    pub fn new(service: &'static str, consumer: &'static str, db: Db) -> Directory {
        assert!(
            service.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "a service name is lowercase letters and underscores"
        );
        let s = service;
        let q = Queries {
            agency: format!(
                "INSERT INTO {s}_directory_agencies (id, name, assigning_office) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, assigning_office = excluded.assigning_office"
            ),
            // A revocation is never undone by an older copy of the key arriving later.
            key: format!(
                "INSERT INTO {s}_directory_keys (id, secret_hash, role, agency_id, deputy_id, client_cert, revoked) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET revoked = {s}_directory_keys.revoked OR excluded.revoked"
            ),
            get_key: format!(
                "SELECT secret_hash, role, agency_id, deputy_id, client_cert, revoked FROM {s}_directory_keys WHERE id = $1"
            ),
            agencies: format!(
                "SELECT id, name, assigning_office FROM {s}_directory_agencies ORDER BY name"
            ),
            office: format!(
                "SELECT id FROM {s}_directory_agencies WHERE assigning_office ORDER BY id LIMIT 1"
            ),
            counts: format!(
                "SELECT (SELECT COUNT(*) FROM {s}_directory_keys), (SELECT COUNT(*) FROM {s}_directory_agencies WHERE assigning_office)"
            ),
        };
        Directory {
            inner: Arc::new(Inner {
                service,
                consumer,
                inbox: Inbox::new(service, consumer),
                db,
                q,
                applied: watch::channel(0).0,
                cache: Bounded::new(4096, Some(Duration::from_secs(1))),
                waiters: tokio::sync::Semaphore::new(NEW_KEY_WAITERS),
            }),
        }
    }

    fn pool(&self) -> &Pool {
        self.inner.db.pool()
    }

    /// The consumer's inbox (in the service's inbox tables).
    pub fn inbox(&self) -> &Inbox {
        &self.inner.inbox
    }

    /// The durable consumer's name on the bus.
    pub fn consumer(&self) -> &'static str {
        self.inner.consumer
    }

    /// Creates the replica's tables and its inbox if they do not exist.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        let s = self.inner.service;
        let ddl = [
            format!(
                "CREATE TABLE IF NOT EXISTS {s}_directory_agencies (id TEXT PRIMARY KEY, name TEXT NOT NULL, \
                 assigning_office BOOLEAN NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {s}_directory_keys (id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, \
                 role TEXT NOT NULL, agency_id TEXT, deputy_id TEXT, client_cert TEXT, revoked BOOLEAN NOT NULL)"
            ),
        ];
        for stmt in ddl {
            on_pool!(self.pool(), p => sqlx::query(sqlx::AssertSqlSafe(stmt)).execute(p).await.map(|_| ()))?;
        }
        self.inner.inbox.migrate(self.pool()).await
    }

    /// Every agency, by name.
    pub async fn agencies(&self) -> Result<Vec<Agency>, DirectoryError> {
        let rows: Vec<(String, String, bool)> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(self.inner.q.agencies.clone())).fetch_all(p).await)?;
        rows.into_iter()
            .map(|(id, name, assigning_office)| {
                Ok(Agency {
                    id: id
                        .parse()
                        .map_err(|_| DirectoryError::Corrupt(format!("agency {id}")))?,
                    name,
                    assigning_office,
                })
            })
            .collect()
    }

    /// The assigning office, once the directory holding it has arrived.
    pub async fn office(&self) -> Result<Option<AgencyId>, DirectoryError> {
        let row: Option<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(self.inner.q.office.clone())).fetch_optional(p).await)?;
        row.map(|(id,)| {
            id.parse()
                .map_err(|_| DirectoryError::Corrupt(format!("agency {id}")))
        })
        .transpose()
    }

    /// Waits until the assigning office has arrived (looking again after each applied batch,
    /// and every few seconds in case a read failed); `None` when `stop` resolves first.
    pub async fn wait_for_office(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<AgencyId> {
        let mut changed = self.inner.applied.subscribe();
        tokio::pin!(stop);
        loop {
            match self.office().await {
                Ok(Some(o)) => return Some(o),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the directory replica; will look again")
                }
            }
            tokio::select! {
                () = &mut stop => return None,
                _ = changed.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

    /// What the service still waits for before it can answer calls, or `None` when ready: the
    /// assigning office and at least one API key.
    pub async fn waiting_for(&self) -> Result<Option<&'static str>, DirectoryError> {
        let (keys, offices): (i64, i64) = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(self.inner.q.counts.clone())).fetch_one(p).await)?;
        Ok((keys == 0 || offices == 0).then_some(
            "the directory (agencies, the assigning office and API keys) from the suggestions service",
        ))
    }

    async fn key(&self, id: Uuid) -> Result<Option<Key>, DirectoryError> {
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
        );
        let row: Option<Row> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(self.inner.q.get_key.clone())).bind(id.to_string()).fetch_optional(p).await)?;
        let Some((secret_hash, role, agency_id, deputy_id, client_cert, revoked)) = row else {
            return Ok(None);
        };
        Key::try_from(StoredKey {
            id: id.to_string(),
            secret_hash,
            role,
            agency_id,
            deputy_id,
            client_cert,
            revoked,
        })
        .map(Some)
        .map_err(DirectoryError::Corrupt)
    }

    /// Resolves a bearer token to a principal against the replica.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        let digest = token::secret_hash(bearer);
        if let Some(p) = self.inner.cache.get(&digest) {
            return Ok(p);
        }
        let unknown = || {
            AppError::new(
                ErrorCode::Unauthenticated,
                "the API key is unknown or revoked; create one with `banli keys create`",
            )
        };
        let Some((id, secret)) = token::parse(bearer) else {
            return Err(unknown());
        };
        let internal = |e: DirectoryError| AppError::internal(&e);
        let mut changed = self.inner.applied.subscribe();
        let mut key = self.key(id).await.map_err(internal)?;
        if key.is_none() {
            if let Some(what) = self.waiting_for().await.map_err(internal)? {
                return Err(AppError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "this service is waiting for {what}; start the suggestions service (or check that its events reach this one) and retry"
                    ),
                ));
            }
            if !issued_recently(id) {
                return Err(unknown());
            }
            // Issued moments ago: it is on its way.
            let not_yet = || {
                AppError::new(
                    ErrorCode::Unavailable,
                    "this API key was issued moments ago and has not reached this service yet; retry in a second",
                )
            };
            let Ok(_permit) = self.inner.waiters.try_acquire() else {
                return Err(not_yet());
            };
            let deadline = tokio::time::Instant::now() + NEW_KEY_WAIT;
            while key.is_none() {
                if tokio::time::timeout_at(deadline, changed.changed())
                    .await
                    .is_err()
                {
                    return Err(not_yet());
                }
                key = self.key(id).await.map_err(internal)?;
            }
        }
        match key {
            Some(k) if !k.revoked && token::verifies(secret, &k.secret_hash) => {
                let p = Principal {
                    position: None,
                    key_id: k.id,
                    role: k.role,
                    agency: k.agency_id,
                    deputy: k.deputy_id,
                    reference: None,
                    client_cert: k.client_cert,
                };
                self.inner.cache.put(digest, p.clone());
                Ok(p)
            }
            _ => Err(unknown()),
        }
    }

    /// [`Directory::authenticate`] as the port the services' APIs take.
    pub fn authenticator(&self) -> Authenticator {
        let d = self.clone();
        Arc::new(move |t: String| {
            let d = d.clone();
            Box::pin(async move { d.authenticate(&t).await })
        })
    }

    /// Applies a batch's records and inbox entries in one transaction.
    async fn save(&self, records: Vec<Record>, settled: Settled) -> Result<(), DirectoryError> {
        let (q_agency, q_key, inbox) = (
            self.inner.q.agency.clone(),
            self.inner.q.key.clone(),
            self.inner.inbox.clone(),
        );
        self.inner
            .db
            .write(move |pool| async move {
                macro_rules! run {
                    ($p:expr, $module:ident) => {{
                        let mut tx = $p.begin().await?;
                        for r in &records {
                            match r {
                                Record::Agency(a) => {
                                    sqlx::query(sqlx::AssertSqlSafe(q_agency.clone()))
                                        .bind(a.id.to_string())
                                        .bind(&a.name)
                                        .bind(a.assigning_office)
                                        .execute(&mut *tx)
                                        .await?;
                                }
                                Record::Key(k) => {
                                    sqlx::query(sqlx::AssertSqlSafe(q_key.clone()))
                                        .bind(k.id.to_string())
                                        .bind(&k.secret_hash)
                                        .bind(k.role.as_str())
                                        .bind(k.agency_id.map(|a| a.to_string()))
                                        .bind(k.deputy_id.map(|d| d.to_string()))
                                        .bind(&k.client_cert)
                                        .bind(k.revoked)
                                        .execute(&mut *tx)
                                        .await?;
                                }
                            }
                        }
                        banli_eventlog::inbox::$module::settle(&inbox, &mut tx, &settled).await?;
                        tx.commit().await?;
                    }};
                }
                match &pool {
                    Pool::Sqlite(p) => run!(p, sqlite),
                    Pool::Postgres(p) => run!(p, postgres),
                }
                Ok::<_, DirectoryError>(())
            })
            .await
    }
}

/// Whether a key id (a UUIDv7) was minted within [`NEW_KEY_WINDOW`] (and not in the future).
fn issued_recently(id: Uuid) -> bool {
    let Some(ts) = id.get_timestamp() else {
        return false;
    };
    let (secs, _) = ts.to_unix();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    secs <= now + 5 && now.saturating_sub(secs) < NEW_KEY_WINDOW.as_secs()
}

/// A directory record as an event carries it.
#[derive(Debug, Clone)]
pub enum Record {
    Agency(Agency),
    Key(Key),
}

impl Apply for Directory {
    type Event = Record;
    /// Each event carries the whole record and applying one twice or late changes nothing
    /// wrong (revocations stick): events are taken as they come.
    const ORDER: Order = Order::AsTheyCome;

    fn inbox(&self) -> &Inbox {
        &self.inner.inbox
    }

    fn pool(&self) -> &Pool {
        self.inner.db.pool()
    }

    fn decode(&self, e: &Envelope) -> Result<Record, String> {
        let (wire, payload) = banli_domain::wire::read::<serde_json::Value>(
            &e.payload,
            SCHEMA_VERSION,
            &format!("{} service", self.inner.service),
        )?;
        let read = |err: serde_json::Error| format!("unreadable event {}: {err}", wire.event_type);
        match wire.event_type.as_str() {
            AGENCY_REGISTERED => serde_json::from_value(payload)
                .map(Record::Agency)
                .map_err(read),
            KEY_ISSUED | KEY_REVOKED => serde_json::from_value(payload)
                .map(Record::Key)
                .map_err(read),
            other => Err(format!(
                "unknown directory event {other}; upgrade the {} service and replay",
                self.inner.service
            )),
        }
    }

    async fn apply(&self, steps: Vec<Step<'_, Record>>) -> Result<Vec<Handled>, String> {
        let mut out = Vec::with_capacity(steps.len());
        let mut settled = Settled::default();
        let mut records = Vec::new();
        for step in steps {
            out.push(match settled.admit(step) {
                Err(h) => h,
                Ok((envelope, record)) => {
                    records.push(record);
                    settled.applied(envelope)
                }
            });
        }
        if settled.is_empty() {
            return Ok(out);
        }
        let revoked: Vec<Uuid> = records
            .iter()
            .filter_map(|r| match r {
                Record::Key(k) if k.revoked => Some(k.id),
                _ => None,
            })
            .collect();
        self.save(records, settled)
            .await
            .map_err(|e| e.to_string())?;
        if !revoked.is_empty() {
            // Cached principals are by token: forget them all (revocations are rare).
            self.inner.cache.clear();
            tracing::info!(keys = ?revoked, "API key revocations arrived");
        }
        self.inner.applied.send_modify(|n| *n += 1);
        Ok(out)
    }
}
