//! The audit log's tables: leaves, signed checkpoints, and the personal data kept beside the
//! leaves. The database refuses UPDATE and DELETE (and TRUNCATE) on the first two.

use banli_audit::Hash;
use banli_db::{Db, Pool, WriterStopped, on_pool};
use time::OffsetDateTime;

mod lease;

pub use lease::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Writer(#[from] WriterStopped),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "this process is no longer the audit log's sequencer (another process claimed it); nothing was written"
    )]
    Fenced,
}

/// Touches the sequencer row if it is still this holder's at this epoch: in an append's
/// transaction it both checks the fence and (PostgreSQL) locks the row, so a takeover waits
/// for the append to commit and then sees its leaves.
const FENCE_CHECK: &str =
    "UPDATE audit_sequencer SET epoch = epoch WHERE id = 1 AND holder = $1 AND epoch = $2";

/// A leaf to store.
#[derive(Debug, Clone)]
pub struct NewLeaf {
    pub index: u64,
    pub leaf_input: Vec<u8>,
    pub leaf_hash: Hash,
    pub record_type: String,
    pub source_id: String,
    /// The salt and the personal data (canonical JSON), when the record has any.
    pub personal: Option<([u8; 32], String)>,
    /// The deputies the personal data concerns.
    pub subjects: Vec<String>,
}

/// A stored leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: u64,
    pub leaf_input: Vec<u8>,
    pub leaf_hash: Vec<u8>,
    pub record_type: String,
    pub recorded_at: OffsetDateTime,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Vec<u8>,
    pub note: String,
    pub signed_at: OffsetDateTime,
}

/// Personal data kept beside a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personal {
    pub salt: Option<Vec<u8>>,
    pub data: Option<String>,
    pub erased_at: Option<OffsetDateTime>,
}

/// The triggers `quarantine` lifts and puts back (also where someone had dropped them), as the
/// first migration creates them.
const POSTGRES_APPEND_ONLY: &str = "CREATE TRIGGER audit_leaves_append_only BEFORE UPDATE OR DELETE ON audit_leaves \
     FOR EACH ROW EXECUTE FUNCTION audit_append_only()";
const SQLITE_NO_DELETE: &str = "CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves \
     BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit_leaves rows cannot be deleted'); END";

/// Records whose personal data a leaf covers.
const SUBJECT_INSERT: &str =
    "INSERT INTO audit_subjects (subject_id, leaf_index) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Stores a published checkpoint.
const CHECKPOINT_INSERT: &str =
    "INSERT INTO audit_checkpoints (tree_size, root_hash, note, signed_at) VALUES ($1, $2, $3, $4)";

/// Writes the one seal row.
const SEAL_UPSERT: &str = "INSERT INTO audit_seal (id, tree_size, root_hash, note, sealed_at) VALUES (1, $1, $2, $3, $4) \
     ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, root_hash = excluded.root_hash, note = excluded.note, sealed_at = excluded.sealed_at";

type CheckpointRow = (i64, Vec<u8>, String, OffsetDateTime);

fn checkpoint((size, root, note, signed_at): CheckpointRow) -> StoredCheckpoint {
    StoredCheckpoint {
        size: size.max(0) as u64,
        root,
        note,
        signed_at,
    }
}

type EntryRow = (i64, Vec<u8>, Vec<u8>, String, OffsetDateTime);
type PersonalRow = (Option<Vec<u8>>, Option<String>, Option<OffsetDateTime>);

fn entry((index, leaf_input, leaf_hash, record_type, recorded_at): EntryRow) -> Entry {
    Entry {
        index: index.max(0) as u64,
        leaf_input,
        leaf_hash,
        record_type,
        recorded_at,
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    pub fn new(pool: Pool) -> Store {
        Store { db: Db::new(pool) }
    }

    pub fn pool(&self) -> &Pool {
        self.db.pool()
    }

    /// The database and its write path.
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let m = migrator(self.pool().backend());
        match self.pool() {
            Pool::Sqlite(p) => m.run(p).await,
            Pool::Postgres(p) => m.run(p).await,
        }
    }

    /// Which of these source ids are stored already, with their leaf index.
    pub async fn known_sources(&self, ids: &[String]) -> Result<Vec<(String, u64)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64)> = match self.pool() {
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT l.source_id, l.leaf_index FROM UNNEST($1::text[]) AS x(id) JOIN audit_leaves l ON l.source_id = x.id",
                )
                .bind(ids)
                .fetch_all(p)
                .await?
            }
            Pool::Sqlite(p) => {
                let json = serde_json::to_string(ids).unwrap_or_default();
                sqlx::query_as(
                    "SELECT l.source_id, l.leaf_index FROM json_each($1) x JOIN audit_leaves l ON l.source_id = x.value",
                )
                .bind(json)
                .fetch_all(p)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(s, i)| (s, i.max(0) as u64))
            .collect())
    }

    /// Stores leaves (consecutive indices), the seal over the whole tree they make and, when
    /// given, a published checkpoint — in one transaction, so that no stored leaf is ever
    /// without the log's signature.
    pub async fn append(
        &self,
        leaves: Vec<NewLeaf>,
        seal: Option<StoredCheckpoint>,
        checkpoint: Option<StoredCheckpoint>,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let fence = fence.cloned();
        // First in the transaction: is this process still the sequencer?
        macro_rules! fenced {
            ($tx:expr) => {
                if let Some(f) = &fence {
                    let n = sqlx::query(FENCE_CHECK)
                        .bind(&f.holder)
                        .bind(f.epoch)
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected();
                    if n != 1 {
                        return Err(StoreError::Fenced);
                    }
                }
            };
        }
        // The published checkpoint (when due) and the seal, in the caller's transaction.
        macro_rules! signed_rows {
            ($tx:expr) => {
                for (sql, row) in [(CHECKPOINT_INSERT, &checkpoint), (SEAL_UPSERT, &seal)] {
                    if let Some(c) = row {
                        sqlx::query(sql)
                            .bind(c.size as i64)
                            .bind(&c.root)
                            .bind(&c.note)
                            .bind(c.signed_at)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
            };
        }
        self.db
            .write(move |pool| async move {
                match &pool {
                    Pool::Postgres(p) => {
                        let mut tx = p.begin().await?;
                        fenced!(tx);
                        if !leaves.is_empty() {
                            let idx: Vec<i64> = leaves.iter().map(|l| l.index as i64).collect();
                            let inputs: Vec<Vec<u8>> =
                                leaves.iter().map(|l| l.leaf_input.clone()).collect();
                            let hashes: Vec<Vec<u8>> =
                                leaves.iter().map(|l| l.leaf_hash.to_vec()).collect();
                            let types: Vec<String> =
                                leaves.iter().map(|l| l.record_type.clone()).collect();
                            let sources: Vec<String> =
                                leaves.iter().map(|l| l.source_id.clone()).collect();
                            sqlx::query(
                                "INSERT INTO audit_leaves (leaf_index, leaf_input, leaf_hash, record_type, source_id, recorded_at) \
                                 SELECT x.i, x.input, x.h, x.t, x.s, $6 FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::text[]) AS x(i, input, h, t, s)",
                            )
                            .bind(&idx)
                            .bind(&inputs)
                            .bind(&hashes)
                            .bind(&types)
                            .bind(&sources)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            let personal: Vec<&NewLeaf> =
                                leaves.iter().filter(|l| l.personal.is_some()).collect();
                            for l in personal {
                                if let Some((salt, data)) = &l.personal {
                                    sqlx::query("INSERT INTO audit_personal (leaf_index, salt, data) VALUES ($1, $2, $3)")
                                        .bind(l.index as i64)
                                        .bind(salt.to_vec())
                                        .bind(data)
                                        .execute(&mut *tx)
                                        .await?;
                                }
                                for subject in &l.subjects {
                                    sqlx::query(SUBJECT_INSERT)
                                        .bind(subject)
                                        .bind(l.index as i64)
                                        .execute(&mut *tx)
                                        .await?;
                                }
                            }
                        }
                        signed_rows!(tx);
                        tx.commit().await?;
                    }
                    Pool::Sqlite(p) => {
                        let mut tx = p.begin().await?;
                        fenced!(tx);
                        for l in &leaves {
                            sqlx::query("INSERT INTO audit_leaves (leaf_index, leaf_input, leaf_hash, record_type, source_id, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)")
                                .bind(l.index as i64)
                                .bind(&l.leaf_input)
                                .bind(l.leaf_hash.to_vec())
                                .bind(&l.record_type)
                                .bind(&l.source_id)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            if let Some((salt, data)) = &l.personal {
                                sqlx::query("INSERT INTO audit_personal (leaf_index, salt, data) VALUES ($1, $2, $3)")
                                    .bind(l.index as i64)
                                    .bind(salt.to_vec())
                                    .bind(data)
                                    .execute(&mut *tx)
                                    .await?;
                                for subject in &l.subjects {
                                    sqlx::query(SUBJECT_INSERT)
                                        .bind(subject)
                                        .bind(l.index as i64)
                                        .execute(&mut *tx)
                                        .await?;
                                }
                            }
                        }
                        signed_rows!(tx);
                        tx.commit().await?;
                    }
                }
                Ok::<(), StoreError>(())
            })
            .await
    }

    /// Leaves `[start, end)` in index order.
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, StoreError> {
        let rows: Vec<EntryRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT leaf_index, leaf_input, leaf_hash, record_type, recorded_at FROM audit_leaves \
             WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index")
            .bind(start as i64)
            .bind(end as i64)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(entry).collect())
    }

    /// The stored leaf hashes `[start, start + limit)` in index order, with their indices.
    pub async fn leaf_hashes(
        &self,
        start: u64,
        limit: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT leaf_index, leaf_hash FROM audit_leaves WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2")
            .bind(start as i64)
            .bind(limit as i64)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(i, h)| (i.max(0) as u64, h))
            .collect())
    }

    /// The stored leaves with indices in `[start, end)`, in index order: index, exact bytes and
    /// the stored hash (which a reader recomputes rather than trusts). A missing index shows as
    /// a shorter, shifted list.
    pub async fn leaf_inputs(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Vec<u8>, Vec<u8>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT leaf_index, leaf_input, leaf_hash FROM audit_leaves WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index")
            .bind(start as i64)
            .bind(end as i64)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(i, input, h)| (i.max(0) as u64, input, h))
            .collect())
    }

    /// The seal: the log's signature over every leaf the sequencer stored.
    pub async fn seal(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<CheckpointRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT tree_size, root_hash, note, sealed_at FROM audit_seal WHERE id = 1")
            .fetch_optional(p)
            .await)?;
        Ok(row.map(checkpoint))
    }

    /// Moves the stored leaves from `from` on (and their personal data) out of the tree into
    /// `audit_quarantine`, in one transaction; returns how many. The caller has checked that
    /// no signature of the log covers them. The append-only triggers are lifted for this
    /// transaction only.
    pub async fn quarantine(&self, from: u64, reason: &str) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc();
        let reason = reason.to_owned();
        let copy = "INSERT INTO audit_quarantine (leaf_index, leaf_input, leaf_hash, record_type, source_id, recorded_at, quarantined_at, reason) \
                    SELECT leaf_index, leaf_input, leaf_hash, record_type, source_id, recorded_at, $2, $3 FROM audit_leaves WHERE leaf_index >= $1";
        let personal = "DELETE FROM audit_personal WHERE leaf_index >= $1";
        let subjects = "DELETE FROM audit_subjects WHERE leaf_index >= $1";
        let delete = "DELETE FROM audit_leaves WHERE leaf_index >= $1";
        // One transaction: lift the delete trigger, copy, delete, put the trigger back.
        macro_rules! set_aside {
            ($p:expr, $lift:expr, $restore:expr) => {{
                let mut tx = $p.begin().await?;
                sqlx::query($lift).execute(&mut *tx).await?;
                sqlx::query(copy)
                    .bind(from as i64)
                    .bind(now)
                    .bind(&reason)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(personal)
                    .bind(from as i64)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(subjects)
                    .bind(from as i64)
                    .execute(&mut *tx)
                    .await?;
                let n = sqlx::query(delete)
                    .bind(from as i64)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query($restore).execute(&mut *tx).await?;
                tx.commit().await?;
                n
            }};
        }
        self.db
            .write(move |pool| async move {
                let moved = match &pool {
                    Pool::Postgres(p) => set_aside!(
                        p,
                        "DROP TRIGGER IF EXISTS audit_leaves_append_only ON audit_leaves",
                        POSTGRES_APPEND_ONLY
                    ),
                    Pool::Sqlite(p) => set_aside!(
                        p,
                        "DROP TRIGGER IF EXISTS audit_leaves_no_delete",
                        SQLITE_NO_DELETE
                    ),
                };
                Ok::<u64, StoreError>(moved)
            })
            .await
    }

    /// The first leaf below `below` with this hash (through the `leaf_hash` index).
    pub async fn index_of(&self, hash: &[u8], below: u64) -> Result<Option<u64>, StoreError> {
        let (min,): (Option<i64>,) = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT MIN(leaf_index) FROM audit_leaves WHERE leaf_hash = $1 AND leaf_index < $2")
            .bind(hash)
            .bind(below as i64)
            .fetch_one(p)
            .await)?;
        Ok(min.map(|i| i.max(0) as u64))
    }

    /// Every signed checkpoint, smallest first.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows: Vec<CheckpointRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT tree_size, root_hash, note, signed_at FROM audit_checkpoints ORDER BY tree_size")
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(checkpoint).collect())
    }

    /// The latest signed checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<CheckpointRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT tree_size, root_hash, note, signed_at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
            .fetch_optional(p)
            .await)?;
        Ok(row.map(checkpoint))
    }

    /// The personal data beside a leaf.
    pub async fn personal(&self, index: u64) -> Result<Option<Personal>, StoreError> {
        let row: Option<PersonalRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT salt, data, erased_at FROM audit_personal WHERE leaf_index = $1")
            .bind(index as i64)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(salt, data, erased_at)| Personal {
            salt,
            data,
            erased_at,
        }))
    }

    /// The leaves below `below` whose personal data concerns `subject`, with whether each is
    /// erased already.
    pub async fn subject_leaves(
        &self,
        subject: &str,
        below: u64,
    ) -> Result<Vec<(u64, bool)>, StoreError> {
        let rows: Vec<(i64, Option<OffsetDateTime>)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT s.leaf_index, p.erased_at FROM audit_subjects s JOIN audit_personal p ON p.leaf_index = s.leaf_index \
             WHERE s.subject_id = $1 AND s.leaf_index < $2 ORDER BY s.leaf_index")
            .bind(subject)
            .bind(below as i64)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(i, e)| (i.max(0) as u64, e.is_some()))
            .collect())
    }

    /// Erases the personal data beside these leaves (the salt too, so a commitment can no
    /// longer be opened), in one transaction. The tree is not touched. Returns the leaves
    /// erased now (those erased before are left as they are).
    pub async fn erase_personal(&self, leaves: &[u64]) -> Result<Vec<u64>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let leaves = leaves.to_vec();
        self.db
            .write(move |pool| async move {
                let sql = "UPDATE audit_personal SET salt = NULL, data = NULL, erased_at = $2 WHERE leaf_index = $1 AND erased_at IS NULL";
                let mut erased = Vec::new();
                macro_rules! erase {
                    ($p:expr) => {{
                        let mut tx = $p.begin().await?;
                        for &index in &leaves {
                            let n = sqlx::query(sql)
                                .bind(index as i64)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                            if n > 0 {
                                erased.push(index);
                            }
                        }
                        tx.commit().await?;
                    }};
                }
                match &pool {
                    Pool::Postgres(p) => erase!(p),
                    Pool::Sqlite(p) => erase!(p),
                }
                Ok::<Vec<u64>, StoreError>(erased)
            })
            .await
    }
}

/// The table in which this service records its migrations: its own, so that services can share
/// one database.
pub const MIGRATIONS_TABLE: &str = "_migrations_audit";

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
