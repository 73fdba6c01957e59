//! The contract's second half: idempotency keys and reference ids, API keys, deputies' lists.

use super::*;

/// Idempotency keys and reference ids, API keys, and what a deputy's list and lists without
/// confidential items hold.
pub(super) async fn keys_and_deputies(f: &Fixture, office: &Actor) {
    // Idempotency keys: reserve, in progress, replay, mismatch, purge.
    use banli_suggestions::store::Idempotency;
    let (kdb, keys) = (f.store.db(), f.store.idempotency_keys());
    assert_eq!(
        keys.reserve(kdb, "k1", "a", "h1").await.expect("reserve"),
        Idempotency::Reserved
    );
    assert_eq!(
        keys.reserve(kdb, "k1", "a", "h1").await.expect("again"),
        Idempotency::InProgress
    );
    keys.complete(kdb, "k1", "a", 201, "{\"id\":1}")
        .await
        .expect("complete");
    assert_eq!(
        keys.reserve(kdb, "k1", "a", "h1").await.expect("replay"),
        Idempotency::Replay {
            status: 201,
            response: "{\"id\":1}".into()
        }
    );
    assert_eq!(
        keys.reserve(kdb, "k1", "a", "h2").await.expect("mismatch"),
        Idempotency::Mismatch
    );
    assert_eq!(
        keys.reserve(kdb, "k2", "a", "h2")
            .await
            .expect("other principal"),
        Idempotency::Reserved
    );
    keys.release(kdb, "k2", "a").await.expect("release");
    assert_eq!(
        keys.reserve(kdb, "k2", "a", "h3")
            .await
            .expect("after release"),
        Idempotency::Reserved
    );
    // An agency's reference id outlives the keys' retention, and goes with its own.
    keys.reserve(kdb, "agency:x", "reference:OA-1", "h4")
        .await
        .expect("a reference");
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        f.store
            .purge_idempotency(
                now + time::Duration::hours(1),
                now - time::Duration::days(1)
            )
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        keys.reserve(kdb, "agency:x", "reference:OA-1", "h4")
            .await
            .expect("kept"),
        Idempotency::InProgress
    );
    assert_eq!(
        f.store
            .purge_idempotency(now, now + time::Duration::hours(1))
            .await
            .expect("purge references"),
        1
    );

    // Keys: only the hash is stored; a revoked key no longer authenticates.
    let (key, token) = f
        .store
        .create_key(banli_domain::Role::AgencyAdmin, Some(f.lead), None, "ops")
        .await
        .expect("key");
    assert_eq!(
        f.store
            .authenticate(&token)
            .await
            .expect("auth")
            .map(|k| k.id),
        Some(key.id)
    );
    assert!(
        f.store
            .authenticate(&token.replace(&token[token.len() - 4..], "0000"))
            .await
            .expect("auth")
            .is_none()
            || token.ends_with("0000")
    );
    let missing = f
        .store
        .create_key(
            banli_domain::Role::AgencyAdmin,
            Some(AgencyId::new()),
            None,
            "ops",
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    f.store.revoke_key(key.id).await.expect("revoke");
    assert!(f.store.authenticate(&token).await.expect("auth").is_none());
    assert!(
        f.store
            .list_keys()
            .await
            .expect("list")
            .iter()
            .all(|k| k.revoked_at.is_some() || k.id != key.id)
    );

    // A deputy's list and confidential items, filtered in SQL: the co-signer of one item sees
    // that item only; the lead deputy all of theirs; lists without confidential items leave
    // the confidential one out.
    let co_signer = DeputyId::new();
    let mut d = details(f, "2020-0777");
    d.co_signers = vec![co_signer];
    d.confidential = true;
    let mut secret = None;
    run(
        f,
        &mut secret,
        office.clone(),
        CommandKind::Submit {
            details: d,
            on: date!(2020 - 01 - 12),
        },
    )
    .await
    .expect("a confidential item");
    let secret = secret.expect("state").id;
    let of = |filter: ListFilter| {
        let store = f.store.clone();
        async move {
            store
                .list(&ListFilter {
                    limit: 1000,
                    ..filter
                })
                .await
                .expect("list")
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        of(ListFilter {
            deputy_id: Some(co_signer),
            ..Default::default()
        })
        .await,
        [secret]
    );
    let everything = of(ListFilter::default()).await;
    assert!(everything.contains(&secret));
    assert_eq!(
        of(ListFilter {
            deputy_id: Some(f.deputy),
            ..Default::default()
        })
        .await,
        everything,
        "the lead deputy of every item"
    );
    assert!(
        of(ListFilter {
            deputy_id: Some(DeputyId::new()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    let open = of(ListFilter {
        without_confidential: true,
        ..Default::default()
    })
    .await;
    assert_eq!(open.len() + 1, everything.len());
    assert!(!open.contains(&secret));
}
