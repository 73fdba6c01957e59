//! A consistent online copy of several SQLite files at one instant, while their server writes.
//!
//! Each target is a new file opened as `main` with its source attached. Writers are held for
//! the moment it takes to start one read transaction per source: a connection attaches every
//! source and takes their write locks (`BEGIN IMMEDIATE` locks every attached database), each
//! target connection then opens its read snapshot, and the locks are released. The copies are
//! then made from those snapshots — schema, rows, `sqlite_sequence`, then indexes, views and
//! triggers — while the server goes on writing. The files together are what a crash at that
//! instant would have left, so the services recover from them as from a restart: an event the
//! producer's snapshot holds but a consumer's does not is delivered again from the outbox, and no
//! consumer holds the effect of an event its producer's copy lacks.
//!
//! SQLite only. PostgreSQL has `pg_dump`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection};

/// One file to copy.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub source: PathBuf,
    /// A new file; refused if it exists.
    pub target: PathBuf,
    /// The table in which the file's service records its migrations.
    pub migrations_table: String,
}

/// What a copy holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The latest migration applied to the copy, if the file has the migrations table.
    pub migration: Option<i64>,
    pub tables: usize,
    pub rows: u64,
}

/// The result of [`snapshot_sqlite`].
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// How long the server's writers were held.
    pub write_pause: Duration,
    /// Per file, in the order given.
    pub files: Vec<Copied>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path} does not exist")]
    Missing { path: String },
    #[error("{path} exists already; a snapshot never overwrites a file")]
    Exists { path: String },
    #[error(
        "the writers of {path} could not be held within {waited:?} (is a long transaction running?): {source}"
    )]
    Busy {
        path: String,
        waited: Duration,
        source: sqlx::Error,
    },
    #[error("copying {path}: {source}")]
    Sqlite { path: String, source: sqlx::Error },
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Copies every source into its new target as of one instant. A failure removes the targets
/// written so far.
pub async fn snapshot_sqlite(
    files: &[SnapshotFile],
    lock_timeout: Duration,
) -> Result<Snapshot, SnapshotError> {
    for f in files {
        if !f.source.is_file() {
            return Err(SnapshotError::Missing {
                path: f.source.display().to_string(),
            });
        }
        if f.target.exists() {
            return Err(SnapshotError::Exists {
                path: f.target.display().to_string(),
            });
        }
    }
    let result = copy_all(files, lock_timeout).await;
    if result.is_err() {
        for f in files {
            let _ = std::fs::remove_file(&f.target);
        }
    }
    result
}

async fn copy_all(
    files: &[SnapshotFile],
    lock_timeout: Duration,
) -> Result<Snapshot, SnapshotError> {
    let Some(first) = files.first() else {
        return Ok(Snapshot {
            write_pause: Duration::ZERO,
            files: Vec::new(),
        });
    };
    let sql_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| SnapshotError::Sqlite {
            path: path.clone(),
            source,
        }
    };
    // The targets, each with its source attached, ready before the writers are held.
    let mut targets = Vec::with_capacity(files.len());
    for f in files {
        let options = SqliteConnectOptions::new()
            .filename(&f.target)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(sql_err(&f.target))?;
        sqlx::query("ATTACH DATABASE ? AS src")
            .bind(f.source.display().to_string())
            .execute(&mut conn)
            .await
            .map_err(sql_err(&f.source))?;
        targets.push(conn);
    }

    // Hold every writer, open each read snapshot, let the writers go.
    // Its main database is the first source (an in-memory one would be sqlx's shared cache,
    // under which attached files do not take their own locks).
    let options = SqliteConnectOptions::new()
        .filename(&first.source)
        .busy_timeout(lock_timeout);
    let mut holder = SqliteConnection::connect_with(&options)
        .await
        .map_err(sql_err(&first.source))?;
    for (i, f) in files.iter().enumerate().skip(1) {
        sqlx::query(sqlx::AssertSqlSafe(format!("ATTACH DATABASE ? AS s{i}")))
            .bind(f.source.display().to_string())
            .execute(&mut holder)
            .await
            .map_err(sql_err(&f.source))?;
    }
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .map_err(|source| SnapshotError::Busy {
            path: first.source.display().to_string(),
            waited: lock_timeout,
            source,
        })?;
    let held = Instant::now();
    let mut opened = Ok(());
    for (conn, f) in targets.iter_mut().zip(files) {
        opened = sqlx::raw_sql("BEGIN; SELECT count(*) FROM src.sqlite_master")
            .execute(&mut *conn)
            .await
            .map(|_| ())
            .map_err(sql_err(&f.source));
        if opened.is_err() {
            break;
        }
    }
    let released = sqlx::raw_sql("ROLLBACK").execute(&mut holder).await;
    let write_pause = held.elapsed();
    opened?;
    released.map_err(sql_err(&first.source))?;
    let _ = holder.close().await;

    let mut copied = Vec::with_capacity(files.len());
    for (mut conn, f) in targets.into_iter().zip(files) {
        let c = copy_one(&mut conn, &f.migrations_table)
            .await
            .map_err(sql_err(&f.source))?;
        conn.close().await.map_err(sql_err(&f.target))?;
        sync(&f.target)?;
        copied.push(c);
    }
    if let Some(dir) = first.target.parent() {
        sync(dir)?;
    }
    Ok(Snapshot {
        write_pause,
        files: copied,
    })
}

/// Inside the open snapshot: `src` into `main`, then commit.
async fn copy_one(conn: &mut SqliteConnection, migrations: &str) -> Result<Copied, sqlx::Error> {
    let version: i64 = sqlx::query_scalar("PRAGMA src.user_version")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PRAGMA main.user_version = {version}"
    )))
    .execute(&mut *conn)
    .await?;
    let objects = sqlx::query(
        "SELECT type, name, sql FROM src.sqlite_master \
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut tables = 0;
    let mut rows = 0;
    for o in objects.iter().filter(|o| o.get::<String, _>(0) == "table") {
        let name: String = o.get(1);
        sqlx::raw_sql(sqlx::AssertSqlSafe(o.get::<String, _>(2)))
            .execute(&mut *conn)
            .await?;
        let q = quote(&name);
        rows += sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO main.{q} SELECT * FROM src.{q}"
        )))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        tables += 1;
    }
    let has_sequence: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM src.sqlite_master WHERE name = 'sqlite_sequence')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if has_sequence {
        // The inserts above set it from the rows; the source's may be higher (deleted rows).
        sqlx::raw_sql(
            "DELETE FROM main.sqlite_sequence; \
             INSERT INTO main.sqlite_sequence SELECT * FROM src.sqlite_sequence",
        )
        .execute(&mut *conn)
        .await?;
    }
    for o in objects.iter().filter(|o| o.get::<String, _>(0) != "table") {
        sqlx::raw_sql(sqlx::AssertSqlSafe(o.get::<String, _>(2)))
            .execute(&mut *conn)
            .await?;
    }
    let has_migrations: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM src.sqlite_master WHERE type = 'table' AND name = ?)",
    )
    .bind(migrations)
    .fetch_one(&mut *conn)
    .await?;
    let migration = if has_migrations {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT MAX(version) FROM src.{} WHERE success",
            quote(migrations)
        )))
        .fetch_one(&mut *conn)
        .await?
    } else {
        None
    };
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    Ok(Copied {
        migration,
        tables,
        rows,
    })
}

/// An SQL identifier, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sync(path: &Path) -> Result<(), SnapshotError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open(path: &Path) -> SqliteConnection {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        SqliteConnection::connect_with(&options)
            .await
            .expect("open")
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "banli-snapshot-{name}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    #[tokio::test]
    async fn copies_schema_rows_sequence_and_triggers_of_every_file_and_refuses_to_overwrite() {
        let d = dir("copy");
        let (a, b) = (d.join("a.db"), d.join("b.db"));
        let mut ca = open(&a).await;
        sqlx::raw_sql(
            "CREATE TABLE _m (version BIGINT, success BOOLEAN); INSERT INTO _m VALUES (1, 1), (2, 1), (3, 0);
             CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL);
             CREATE INDEX t_v ON t (v);
             CREATE TABLE k (a TEXT, b TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;
             CREATE TRIGGER t_frozen BEFORE DELETE ON t BEGIN SELECT RAISE(ABORT, 'append-only'); END;
             INSERT INTO t (v) VALUES ('x'), ('y'), ('z'); INSERT INTO k VALUES ('p', 'q');
             PRAGMA user_version = 7;",
        )
        .execute(&mut ca)
        .await
        .expect("schema a");
        // A sequence above the rows: the copy keeps it.
        sqlx::raw_sql("UPDATE sqlite_sequence SET seq = 10 WHERE name = 't'")
            .execute(&mut ca)
            .await
            .expect("seq");
        let mut cb = open(&b).await;
        sqlx::raw_sql("CREATE TABLE u (n INTEGER); INSERT INTO u VALUES (1), (2);")
            .execute(&mut cb)
            .await
            .expect("schema b");

        let out = dir("copy-out");
        let files = vec![
            SnapshotFile {
                source: a.clone(),
                target: out.join("a.db"),
                migrations_table: "_m".into(),
            },
            SnapshotFile {
                source: b.clone(),
                target: out.join("b.db"),
                migrations_table: "_m".into(),
            },
        ];
        let s = snapshot_sqlite(&files, Duration::from_secs(5))
            .await
            .expect("snapshot");
        assert_eq!(
            s.files,
            vec![
                Copied {
                    migration: Some(2),
                    tables: 3,
                    rows: 7
                },
                Copied {
                    migration: None,
                    tables: 1,
                    rows: 2
                }
            ]
        );
        let mut copy = open(&out.join("a.db")).await;
        let next: i64 = sqlx::query_scalar("INSERT INTO t (v) VALUES ('w') RETURNING id")
            .fetch_one(&mut copy)
            .await
            .expect("insert");
        assert_eq!(next, 11, "the AUTOINCREMENT sequence is kept");
        let err = sqlx::raw_sql("DELETE FROM t").execute(&mut copy).await;
        assert!(err.is_err(), "the trigger is copied");
        let v: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut copy)
            .await
            .expect("pragma");
        assert_eq!(v, 7);
        let indexes: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 't_v'")
                .fetch_one(&mut copy)
                .await
                .expect("index");
        assert_eq!(indexes, 1);

        // Never over an existing file; nothing written then.
        let again = snapshot_sqlite(&files, Duration::from_secs(5)).await;
        assert!(
            matches!(again, Err(SnapshotError::Exists { .. })),
            "{again:?}"
        );
        let missing = snapshot_sqlite(
            &[SnapshotFile {
                source: d.join("none.db"),
                target: out.join("none.db"),
                migrations_table: "_m".into(),
            }],
            Duration::from_secs(5),
        )
        .await;
        assert!(
            matches!(missing, Err(SnapshotError::Missing { .. })),
            "{missing:?}"
        );
        assert!(!out.join("none.db").exists());
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[tokio::test]
    async fn a_writer_holding_its_lock_makes_the_snapshot_fail_cleanly() {
        let d = dir("busy");
        let a = d.join("a.db");
        let mut writer = open(&a).await;
        sqlx::raw_sql("CREATE TABLE t (n INTEGER); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .execute(&mut writer)
            .await
            .expect("writer");
        let target = d.join("copy.db");
        let r = snapshot_sqlite(
            &[SnapshotFile {
                source: a.clone(),
                target: target.clone(),
                migrations_table: "_m".into(),
            }],
            Duration::from_millis(200),
        )
        .await;
        assert!(matches!(r, Err(SnapshotError::Busy { .. })), "{r:?}");
        assert!(!target.exists(), "a failed snapshot leaves no file");
        let _ = std::fs::remove_dir_all(&d);
    }
}
