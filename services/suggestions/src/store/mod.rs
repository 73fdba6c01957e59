//! Storage of the suggestions service on SQLite and PostgreSQL.
//!
//! A suggestion is stored as its events, appended under an expected version in one transaction
//! with the outbox rows that carry them to other services, beside one row of list columns
//! (number, state, title, lead deputy, confidentiality; and its deputies in
//! `suggestion_deputies`) that lists filter on; its state is rebuilt from the events when
//! loaded. Runtime queries only (no compile-time database); each backend has its own migrations.

mod directory;
mod export;
mod keys;
mod list;
mod publications;
mod rows;
mod suggestions;
mod users;

pub use banli_db::idempotency::Idempotency;
pub use banli_domain::directory::{Agency, Deputy, Division, Session};
pub use keys::ApiKey;
use list::suggestion_ids;
pub use publications::{PublicReplyRow, PublicationRow};
pub use suggestions::{
    InboxEntry, ListFilter, NewEvent, OutboxRow, SCHEMA_VERSION, SuggestionSummary,
};
pub use users::{User, UserSession};

use std::future::Future;

use banli_db::idempotency::IdempotencyKeys;
use banli_db::{Db, Pool, WriterStopped, on_pool};
use banli_eventlog::outbox::Outbox;

/// What can go wrong at the storage edge, in terms the application can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Someone else changed the aggregate first.
    #[error("version conflict: expected version {expected}, the stored version is {actual}")]
    Conflict { expected: u64, actual: u64 },
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

/// Maps a unique violation to `AlreadyExists(what)`, anything else to `Database`.
pub(crate) fn unique_as(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::AlreadyExists(what.to_owned())
        }
        _ => StoreError::Database(e),
    }
}

/// The suggestions service's store.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    idempotency: IdempotencyKeys,
    outbox: Outbox,
}

impl From<WriterStopped> for StoreError {
    fn from(e: WriterStopped) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl Store {
    pub fn new(pool: Pool) -> Store {
        Store {
            db: Db::new(pool),
            idempotency: IdempotencyKeys::new("idempotency_keys"),
            outbox: Outbox::new("outbox"),
        }
    }

    /// Runs a write: on the writer thread for SQLite, in place for PostgreSQL.
    pub(crate) async fn write<F, Fut, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        self.db.write(f).await
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The outbox table the relay drains.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The `Idempotency-Key` table (created by this service's migrations).
    pub fn idempotency_keys(&self) -> &IdempotencyKeys {
        &self.idempotency
    }

    /// Forgets idempotency keys made before `older_than` and agencies' reference ids made
    /// before `references_older_than`.
    pub async fn purge_idempotency(
        &self,
        older_than: time::OffsetDateTime,
        references_older_than: time::OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.idempotency
            .purge(&self.db, older_than, references_older_than)
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub fn pool(&self) -> &Pool {
        self.db.pool()
    }

    /// Applies this service's migrations (idempotent). The migrations table is the service's own,
    /// so several services can share one SQLite file in the embedded mode.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let m = migrator(self.pool().backend());
        match self.pool() {
            Pool::Sqlite(p) => m.run(p).await,
            Pool::Postgres(p) => m.run(p).await,
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self.pool(), p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(StoreError::from))
    }
}

/// The table in which this service records its migrations: its own, so that services can share
/// one database.
pub const MIGRATIONS_TABLE: &str = "_migrations_suggestions";

/// This service's migrations on `backend` (`banli backup` and `banli restore` compare a copy's
/// latest with the latest here).
pub fn migrator(backend: banli_db::Backend) -> sqlx::migrate::Migrator {
    let mut m = match backend {
        banli_db::Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        banli_db::Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

/// The role and binding of a key's or an account's row, parsed; `what` names the row in the
/// error.
pub(crate) fn parse_binding(
    what: &str,
    role: &str,
    agency: Option<&str>,
    deputy: Option<&str>,
) -> Result<
    (
        banli_domain::Role,
        Option<banli_domain::ids::AgencyId>,
        Option<banli_domain::ids::DeputyId>,
    ),
    StoreError,
> {
    let corrupt = |field: &str| StoreError::Corrupt(format!("{what}: {field}"));
    Ok((
        role.parse().map_err(|_| corrupt("role"))?,
        agency
            .map(str::parse)
            .transpose()
            .map_err(|_| corrupt("agency"))?,
        deputy
            .map(str::parse)
            .transpose()
            .map_err(|_| corrupt("deputy"))?,
    ))
}
