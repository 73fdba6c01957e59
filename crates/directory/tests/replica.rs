//! The directory replica against the suggestions service's real store, each on a database of
//! its own (SQLite and PostgreSQL): what the suggestions service exports is what the replica
//! authenticates with; before the directory arrives a call is 503, never 401; a key issued
//! moments ago is waited for; a revocation sticks even when an older copy arrives after it; an
//! upgrade exports the directory written before it once.

use std::time::{Duration, Instant};

use banli_api::{ErrorCode, token};
use banli_db::testing::TestDb;
use banli_db::{Db, Pool};
use banli_directory::Directory;
use banli_domain::Role;
use banli_domain::directory::Agency;
use banli_domain::ids::AgencyId;
use banli_eventlog::{Envelope, Handler, Incoming};
use banli_suggestions::store::Store;
use uuid::Uuid;

/// Everything the suggestions store has not yet published, as delivered envelopes (and marks
/// it published, as the relay would).
async fn pending(store: &Store) -> Vec<Incoming> {
    let rows = store.pending_outbox(1000).await.expect("outbox");
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    store
        .mark_published(&seqs, time::OffsetDateTime::now_utc())
        .await
        .expect("mark");
    rows.into_iter()
        .filter(|r| r.event_type.starts_with(banli_directory::FILTER))
        .map(|r| Incoming {
            envelope: Envelope {
                event_id: r.event_id,
                event_type: r.event_type,
                aggregate_id: r.aggregate_id,
                aggregate_version: r.aggregate_version,
                payload: r.payload.into_bytes(),
            },
            attempt: 1,
        })
        .collect()
}

async fn deliver(directory: &Directory, batch: &[Incoming]) {
    let out = directory.handle(batch).await.expect("applied");
    assert_eq!(out.len(), batch.len());
}

fn code(r: Result<banli_api::Principal, banli_api::AppError>) -> ErrorCode {
    r.expect_err("refused").code
}

async fn scenario(suggestions: Pool, own: Pool) {
    let store = Store::new(suggestions);
    store.migrate().await.expect("migrate suggestions");
    let directory = Directory::new("coordination", "coordination-directory", Db::new(own));
    directory.migrate().await.expect("migrate replica");

    // Nothing has arrived: even a well-formed token is 503 (not 401), and readiness says why.
    let (early, _) = token::issue(Uuid::now_v7());
    assert_eq!(
        code(directory.authenticate(&early).await),
        ErrorCode::Unavailable
    );
    let waiting = directory.waiting_for().await.expect("readiness");
    assert!(
        waiting.is_some_and(|w| w.contains("suggestions service")),
        "{waiting:?}"
    );

    let office = Agency {
        id: AgencyId::new(),
        name: "Office".into(),
        assigning_office: true,
    };
    let agency = Agency {
        id: AgencyId::new(),
        name: "Transport".into(),
        assigning_office: false,
    };
    store.create_agency(&office).await.expect("office");
    store.create_agency(&agency).await.expect("agency");
    let (_, office_token) = store
        .create_key(Role::AssigningOffice, Some(office.id), None, "office")
        .await
        .expect("office key");
    let (agency_key, agency_token) = store
        .create_key(Role::AgencyAdmin, Some(agency.id), None, "agency")
        .await
        .expect("agency key");
    let first = pending(&store).await;
    assert_eq!(first.len(), 4, "two agencies and two keys are published");
    assert!(
        first
            .iter()
            .all(|i| !String::from_utf8_lossy(&i.envelope.payload).contains(&agency_token[40..])),
        "a token's secret never leaves the suggestions service"
    );
    deliver(&directory, &first).await;
    assert_eq!(directory.waiting_for().await.expect("readiness"), None);
    assert_eq!(directory.office().await.expect("office"), Some(office.id));
    let names: Vec<String> = directory
        .agencies()
        .await
        .expect("agencies")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["Office", "Transport"]);

    let p = directory
        .authenticate(&agency_token)
        .await
        .expect("the agency's key");
    assert_eq!(
        (p.key_id, p.role, p.agency),
        (agency_key.id, Role::AgencyAdmin, Some(agency.id))
    );
    let p = directory
        .authenticate(&office_token)
        .await
        .expect("the office's key");
    assert_eq!((p.role, p.agency), (Role::AssigningOffice, Some(office.id)));
    // A wrong secret, another shape, and an unknown key issued long ago: 401 at once.
    let wrong = format!(
        "{}{}",
        &agency_token[..agency_token.len() - 1],
        if agency_token.ends_with('0') {
            '1'
        } else {
            '0'
        }
    );
    assert_eq!(
        code(directory.authenticate(&wrong).await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        code(directory.authenticate("Bearer nonsense").await),
        ErrorCode::Unauthenticated
    );
    let old = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        1_577_836_800,
        0,
    ));
    let (old_token, _) = token::issue(old);
    let started = Instant::now();
    assert_eq!(
        code(directory.authenticate(&old_token).await),
        ErrorCode::Unauthenticated
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "an old unknown key is not waited for"
    );

    // A key issued moments ago that has not arrived: waited for, then 503 "retry".
    let (fresh_token, _) = token::issue(Uuid::now_v7());
    let r = directory.authenticate(&fresh_token).await;
    let e = r.expect_err("not here");
    assert!(
        e.code == ErrorCode::Unavailable && e.detail.contains("retry"),
        "{e:?}"
    );
    // Anyone can mint a recent-looking id: at most 32 calls wait at once; the next is told to
    // retry at once instead of holding its connection.
    let waiting: Vec<_> = (0..32)
        .map(|_| {
            let d = directory.clone();
            let (t, _) = token::issue(Uuid::now_v7());
            tokio::spawn(async move { d.authenticate(&t).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (t, _) = token::issue(Uuid::now_v7());
    assert_eq!(
        code(directory.authenticate(&t).await),
        ErrorCode::Unavailable
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "not held: {:?}",
        started.elapsed()
    );
    for w in waiting {
        assert_eq!(code(w.await.expect("joined")), ErrorCode::Unavailable);
    }
    // ...and one that arrives while the call waits is accepted.
    let (_, new_token) = store
        .create_key(Role::Handler, Some(agency.id), None, "new")
        .await
        .expect("new key");
    let waiting = {
        let d = directory.clone();
        let t = new_token.clone();
        tokio::spawn(async move { d.authenticate(&t).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    deliver(&directory, &pending(&store).await).await;
    let p = waiting
        .await
        .expect("joined")
        .expect("accepted once it arrived");
    assert_eq!(p.role, Role::Handler);

    // Revoked: refused once the revocation arrives, and an older copy of the key arriving
    // after it (a redelivery under a new id) does not bring it back.
    store.revoke_key(agency_key.id).await.expect("revoke");
    deliver(&directory, &pending(&store).await).await;
    assert_eq!(
        code(directory.authenticate(&agency_token).await),
        ErrorCode::Unauthenticated
    );
    let mut stale = first
        .iter()
        .find(|i| i.envelope.aggregate_id == agency_key.id.to_string())
        .expect("the key's first event")
        .clone();
    stale.envelope.event_id = Uuid::now_v7();
    deliver(&directory, &[stale]).await;
    assert_eq!(
        code(directory.authenticate(&agency_token).await),
        ErrorCode::Unauthenticated
    );

    // Nothing more to publish; an upgraded store (rows from before the export) publishes all once.
    assert_eq!(store.export_directory().await.expect("export"), 0);
    banli_db::testing::exec(
        store.pool(),
        "UPDATE agencies SET exported = FALSE".into(),
        &[],
    )
    .await;
    banli_db::testing::exec(
        store.pool(),
        "UPDATE api_keys SET exported = FALSE".into(),
        &[],
    )
    .await;
    assert_eq!(store.export_directory().await.expect("export"), 5);
    let again = pending(&store).await;
    assert_eq!(again.len(), 5);
    deliver(&directory, &again).await;
    assert_eq!(
        code(directory.authenticate(&agency_token).await),
        ErrorCode::Unauthenticated,
        "the revocation is exported with the key"
    );
    directory
        .authenticate(&office_token)
        .await
        .expect("still valid");
}

#[tokio::test]
async fn sqlite_replica_authenticates_what_the_suggestions_service_exports() {
    let (a, b) = (TestDb::sqlite().await, TestDb::sqlite().await);
    scenario(a.pool.clone(), b.pool.clone()).await;
    a.drop_db().await;
    b.drop_db().await;
}

#[tokio::test]
async fn postgres_replica_authenticates_what_the_suggestions_service_exports() {
    let (Some(a), Some(b)) = (TestDb::postgres().await, TestDb::postgres().await) else {
        return;
    };
    scenario(a.pool.clone(), b.pool.clone()).await;
    a.drop_db().await;
    b.drop_db().await;
}
