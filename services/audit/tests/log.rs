//! The audit log on SQLite and PostgreSQL: appends in batches, signed checkpoints, proofs that
//! verify with only the public key, restart, the append-only triggers, erasure of personal
//! data, and tampering — a flipped byte, a deleted row, two rows swapped, a forged checkpoint —
//! each found by `verify`.

use std::time::Duration;

use banli_audit::{Record, Signer, Verifier, leaf_hash, verify_consistency, verify_inclusion};
use banli_auditlog::store::Store;
use banli_auditlog::verify::Trusted;
use banli_auditlog::verify::{Finding, VerifyError, verify};
use banli_auditlog::{AuditLog, LogError, LogOptions};
use banli_db::testing::TestDb;
use banli_db::{Pool, on_pool};
use serde_json::json;

const ORIGIN: &str = "banli.test/audit";

fn record(i: u64) -> Record {
    Record {
        record_type: "supervision_notice".into(),
        source_id: format!("notice-{i}"),
        subject: Some(format!("suggestion-{}", i % 7)),
        occurred_at: "2026-03-02T01:00:00Z".into(),
        actor: json!({"role": "assigning_office"}),
        data: json!({"level": "notice", "round": i}),
        personal: i
            .is_multiple_of(3)
            .then(|| json!({"/to/contact": format!("handler {i}")})),
    }
}

fn options() -> LogOptions {
    LogOptions {
        checkpoint_interval: Duration::from_millis(50),
        ..LogOptions::new(ORIGIN)
    }
}

async fn open(db: &TestDb, signer: &Signer) -> AuditLog {
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("migrations");
    let signer = Signer::parse(&signer.to_text()).expect("same key");
    AuditLog::open(store, signer, options())
        .await
        .expect("open")
}

async fn signed(log: &AuditLog, size: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while log.signed_size() < size {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint at size {size} (at {})",
            log.signed_size()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn execute(pool: &Pool, sql: &str) -> Result<(), sqlx::Error> {
    let sql = sql.to_owned();
    on_pool!(pool, p => sqlx::query(sqlx::AssertSqlSafe(sql)).execute(p).await.map(|_| ()))
}

async fn scenario(db: TestDb) {
    let signer = Signer::generate(ORIGIN).expect("key");
    let verifier = Verifier::parse(&signer.verifier().to_text()).expect("verifier");
    let log = open(&db, &signer).await;
    assert_eq!(log.signed_size(), 0, "a new log signs its empty tree");

    // Appends from several callers at once, batched by the sequencer.
    let mut tasks = Vec::new();
    for c in 0..4u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let records: Vec<Record> = (0..25).map(|i| record(c * 25 + i)).collect();
            log.append(records).await.expect("append")
        }));
    }
    let mut indices = Vec::new();
    for t in tasks {
        indices.extend(t.await.expect("task").into_iter().map(|a| a.index));
    }
    indices.sort();
    assert_eq!(indices, (0..100).collect::<Vec<_>>(), "every record once");
    // The same source ids again: not appended, the earlier indices returned.
    let again = log
        .append(vec![record(5), record(100)])
        .await
        .expect("append");
    assert!(again[0].duplicate);
    assert!(!again[1].duplicate);
    assert_eq!(again[1].index, 100);
    signed(&log, 101).await;

    // The checkpoint verifies with the public key alone; proofs lead to its root.
    let note = log.checkpoint().expect("checkpoint").note;
    let cp = verifier.verify(&note, ORIGIN).expect("signed");
    assert_eq!(cp.size, 101);
    let entries = log.entries(0, 200, 1000).await.expect("entries");
    assert_eq!(entries.len(), 101);
    for e in entries.iter().step_by(7) {
        let proof = log.inclusion_proof(e.index, cp.size).expect("proof");
        assert_eq!(
            verify_inclusion(
                e.index,
                cp.size,
                &leaf_hash(&e.leaf_input),
                &proof,
                &cp.root
            ),
            Ok(())
        );
    }
    let leaf = leaf_hash(&entries[42].leaf_input);
    let (index, _) = log
        .inclusion_by_hash(&leaf, cp.size)
        .await
        .expect("proof")
        .expect("found");
    assert_eq!(index, 42);
    // The personal data is beside the leaf, not in it.
    let personal = log.store().personal(3).await.expect("read").expect("kept");
    assert!(
        personal
            .data
            .as_deref()
            .is_some_and(|d| d.contains("handler 3"))
    );
    assert!(!String::from_utf8_lossy(&entries[3].leaf_input).contains("handler 3"));
    assert!(
        log.inclusion_proof(0, 102).is_err(),
        "beyond the signed size"
    );

    // A restart rebuilds the same tree; later checkpoints are consistent with earlier ones.
    drop(log);
    let log = open(&db, &signer).await;
    assert_eq!(log.signed_size(), 101);
    log.append((101..150).map(record).collect())
        .await
        .expect("append");
    signed(&log, 150).await;
    let cp2 = verifier
        .verify(&log.checkpoint().expect("checkpoint").note, ORIGIN)
        .expect("signed");
    let proof = log.consistency_proof(101, 150).expect("proof");
    assert_eq!(
        verify_consistency(101, 150, &cp.root, &cp2.root, &proof),
        Ok(())
    );

    // Erasing personal data leaves the tree intact.
    assert_eq!(
        log.store().erase_personal(&[3]).await.expect("erase"),
        vec![3]
    );
    let personal = log.store().personal(3).await.expect("read").expect("row");
    assert_eq!((personal.data, personal.salt), (None, None));
    let ok = verify(log.store(), &verifier, ORIGIN, &[])
        .await
        .expect("clean");
    assert_eq!((ok.leaves, ok.signed_size), (150, 150));

    // A leaf injected behind the log's back (INSERT needs no trigger dropped): found while the
    // log runs, refused at the next start, and started again once it is set aside.
    let forged = record(999).leaf_input(&[0; 32]);
    on_pool!(&db.pool, p => sqlx::query("INSERT INTO audit_leaves (leaf_index, leaf_input, leaf_hash, record_type, source_id, recorded_at) VALUES (150, $1, $2, 'supervision_notice', 'forged', $3)")
        .bind(&forged).bind(leaf_hash(&forged).to_vec()).bind(time::OffsetDateTime::now_utc()).execute(p).await.map(|_| ()))
        .expect("inject");
    assert!(matches!(
        verify(log.store(), &verifier, ORIGIN, &[]).await,
        Err(VerifyError::Found(Finding::Unsigned {
            index: 150,
            stored: 151
        }))
    ));
    drop(log);
    let store = Store::new(db.pool.clone());
    match AuditLog::open(
        store.clone(),
        Signer::parse(&signer.to_text()).expect("key"),
        options(),
    )
    .await
    {
        Err(LogError::Unsigned {
            index: 150,
            stored: 151,
        }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a log with a forged leaf at its end started"),
    }
    assert_eq!(
        store
            .quarantine(150, "forged in a test")
            .await
            .expect("quarantine"),
        1
    );
    let (kept,): (i64,) = on_pool!(&db.pool, p => sqlx::query_as(
        "SELECT count(*) FROM audit_quarantine WHERE source_id = 'forged'").fetch_one(p).await)
    .expect("quarantined");
    assert_eq!(kept, 1);
    let log = open(&db, &signer).await;
    assert_eq!(log.signed_size(), 150);
    assert!(verify(log.store(), &verifier, ORIGIN, &[]).await.is_ok());

    // The database refuses changes and deletions (quarantine put its trigger back).
    for sql in [
        "UPDATE audit_leaves SET record_type = 'x' WHERE leaf_index = 1",
        "DELETE FROM audit_leaves WHERE leaf_index = 1",
        "UPDATE audit_checkpoints SET note = 'x' WHERE tree_size = 101",
        "DELETE FROM audit_checkpoints WHERE tree_size = 101",
    ] {
        let err = execute(&db.pool, sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    drop(log);
    tamper(&db, &signer, &verifier).await;
}

/// With the triggers dropped (what it takes to tamper), every kind of change is found.
async fn tamper(db: &TestDb, signer: &Signer, verifier: &Verifier) {
    let drops: &[&str] = match &db.pool {
        Pool::Sqlite(_) => &[
            "DROP TRIGGER audit_leaves_no_update",
            "DROP TRIGGER audit_leaves_no_delete",
            "DROP TRIGGER audit_checkpoints_no_update",
            "DROP TRIGGER audit_checkpoints_no_delete",
        ],
        Pool::Postgres(_) => &[
            "DROP TRIGGER audit_leaves_append_only ON audit_leaves",
            "DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints",
        ],
    };
    for sql in drops {
        execute(&db.pool, sql).await.expect(sql);
    }
    let store = Store::new(db.pool.clone());
    let check = || async { verify(&store, verifier, ORIGIN, &[]).await };
    let snapshot: Vec<(i64, Vec<u8>, Vec<u8>)> = on_pool!(&db.pool, p => sqlx::query_as(
        "SELECT leaf_index, leaf_input, leaf_hash FROM audit_leaves ORDER BY leaf_index").fetch_all(p).await)
        .expect("leaves");
    let put = |i: i64, input: Vec<u8>, hash: Vec<u8>| {
        let pool = db.pool.clone();
        async move {
            on_pool!(&pool, p => sqlx::query("UPDATE audit_leaves SET leaf_input = $2, leaf_hash = $3 WHERE leaf_index = $1")
                .bind(i).bind(input).bind(hash).execute(p).await.map(|_| ()))
            .expect("tamper");
        }
    };

    // A flipped byte (hash column left alone).
    let mut flipped = snapshot[60].1.clone();
    flipped[10] ^= 1;
    put(60, flipped.clone(), snapshot[60].2.clone()).await;
    assert!(matches!(
        check().await,
        Err(VerifyError::Found(Finding::LeafAltered { index: 60 }))
    ));
    // The same, with the hash recomputed to match: the checkpoint's root gives it away.
    put(60, flipped.clone(), leaf_hash(&flipped).to_vec()).await;
    match check().await {
        Err(VerifyError::Found(Finding::RootMismatch { size, first_bad })) => {
            assert!(first_bad <= 60 && 60 < size, "{first_bad}..{size}");
        }
        other => panic!("{other:?}"),
    }
    put(60, snapshot[60].1.clone(), snapshot[60].2.clone()).await;
    assert!(check().await.is_ok(), "restored");

    // Two rows swapped.
    put(20, snapshot[21].1.clone(), snapshot[21].2.clone()).await;
    put(21, snapshot[20].1.clone(), snapshot[20].2.clone()).await;
    match check().await {
        Err(VerifyError::Found(Finding::RootMismatch { first_bad, size })) => {
            assert!(first_bad <= 20 && 21 < size);
        }
        other => panic!("{other:?}"),
    }
    put(20, snapshot[20].1.clone(), snapshot[20].2.clone()).await;
    put(21, snapshot[21].1.clone(), snapshot[21].2.clone()).await;
    assert!(check().await.is_ok(), "restored");

    // A forged checkpoint: a note signed by another key, and a note altered.
    let forger = Signer::generate(ORIGIN).expect("key");
    let forged = forger.sign(&banli_audit::Checkpoint {
        origin: ORIGIN.into(),
        size: 150,
        root: [0; 32],
    });
    let genuine: (Vec<u8>, String) = on_pool!(&db.pool, p => sqlx::query_as(
        "SELECT root_hash, note FROM audit_checkpoints WHERE tree_size = 150").fetch_one(p).await)
    .expect("the checkpoint at 150");
    execute(
        &db.pool,
        "DELETE FROM audit_checkpoints WHERE tree_size = 150",
    )
    .await
    .expect("delete");
    on_pool!(&db.pool, p => sqlx::query("INSERT INTO audit_checkpoints (tree_size, root_hash, note, signed_at) VALUES (150, $1, $2, $3)")
        .bind(vec![0u8; 32]).bind(&forged).bind(time::OffsetDateTime::now_utc()).execute(p).await.map(|_| ()))
        .expect("insert");
    assert!(matches!(
        check().await,
        Err(VerifyError::Found(Finding::BadCheckpoint { size: 150, .. }))
    ));
    execute(
        &db.pool,
        "DELETE FROM audit_checkpoints WHERE tree_size = 150",
    )
    .await
    .expect("delete");
    on_pool!(&db.pool, p => sqlx::query("INSERT INTO audit_checkpoints (tree_size, root_hash, note, signed_at) VALUES (150, $1, $2, $3)")
        .bind(&genuine.0).bind(&genuine.1).bind(time::OffsetDateTime::now_utc()).execute(p).await.map(|_| ()))
        .expect("insert");
    assert!(check().await.is_ok(), "restored");

    // A deleted row in the middle, then the last rows.
    execute(&db.pool, "DELETE FROM audit_leaves WHERE leaf_index = 30")
        .await
        .expect("delete");
    assert!(matches!(
        check().await,
        Err(VerifyError::Found(Finding::Missing {
            index: 30,
            found: 31
        }))
    ));
    put_back(db, &snapshot[30]).await;
    execute(&db.pool, "DELETE FROM audit_leaves WHERE leaf_index >= 140")
        .await
        .expect("delete");
    assert!(matches!(
        check().await,
        Err(VerifyError::Found(Finding::Truncated { stored: 140, .. }))
    ));

    // Cut back to an earlier checkpoint with the later checkpoints and the seal deleted too:
    // the database alone no longer shows it, a witness copy of the checkpoint at 150 does.
    for sql in [
        "DELETE FROM audit_leaves WHERE leaf_index >= 101",
        "DELETE FROM audit_checkpoints WHERE tree_size > 101",
        "DELETE FROM audit_seal",
    ] {
        execute(&db.pool, sql).await.expect(sql);
    }
    assert!(check().await.is_ok(), "consistent with itself");
    let at_150 = Trusted {
        source: "witness/150.checkpoint".into(),
        checkpoint: verifier.verify(&genuine.1, ORIGIN).expect("genuine"),
    };
    match verify(&store, verifier, ORIGIN, std::slice::from_ref(&at_150)).await {
        Err(VerifyError::Found(Finding::ShorterThanTrusted {
            name,
            size: 150,
            stored: 101,
        })) => {
            assert_eq!(name, at_150.source);
        }
        other => panic!("{other:?}"),
    }
    // A checkpoint the log signed for a size it still holds, but with another root (a fork).
    let fork = Trusted {
        source: "witness/fork.checkpoint".into(),
        checkpoint: verifier
            .verify(
                &signer.sign(&banli_audit::Checkpoint {
                    origin: ORIGIN.into(),
                    size: 80,
                    root: [7; 32],
                }),
                ORIGIN,
            )
            .expect("signed"),
    };
    assert!(matches!(
        verify(&store, verifier, ORIGIN, &[fork]).await,
        Err(VerifyError::Found(Finding::DiffersFromTrusted {
            size: 80,
            ..
        }))
    ));
    // Without any signature left, nothing stored is trusted.
    execute(&db.pool, "DELETE FROM audit_checkpoints")
        .await
        .expect("delete");
    assert!(matches!(
        check().await,
        Err(VerifyError::Found(Finding::Unsigned {
            index: 0,
            stored: 101
        }))
    ));
}

async fn put_back(db: &TestDb, row: &(i64, Vec<u8>, Vec<u8>)) {
    on_pool!(&db.pool, p => sqlx::query("INSERT INTO audit_leaves (leaf_index, leaf_input, leaf_hash, record_type, source_id, recorded_at) VALUES ($1, $2, $3, 'supervision_notice', $4, $5)")
        .bind(row.0).bind(&row.1).bind(&row.2).bind(format!("restored-{}", row.0)).bind(time::OffsetDateTime::now_utc()).execute(p).await.map(|_| ()))
        .expect("put back");
}

#[tokio::test]
async fn on_sqlite() {
    scenario(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    scenario(db).await;
}
