//! Open commitments: overdue ones raise notices; progress word owed to the deputy.

use crate::support::*;

/// A commitment still open the day after its target date raises one notice (trigger overdue)
/// to its owner in the office's name; a converted one has no timer and raises nothing.
#[tokio::test]
async fn overdue_commitments_raise_notices() {
    use banli_domain::suggestion::{Commitment, CommitmentState, Suggestion};

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(false).await;
    let mut s: Suggestion = store
        .replicas(None)
        .await
        .expect("replicas")
        .pop()
        .expect("the replica");
    let lead = s.assignments[0].clone();
    let commitment = |measure: &str, state| Commitment {
        evidence_documents: Vec::new(),
        id: banli_domain::ids::CommitmentId::new(),
        assignment_id: lead.id,
        measure: measure.into(),
        owner: lead.agency,
        division: None,
        target_date: date!(2020 - 06 - 30),
        state,
        progress: vec![],
        evidence: String::new(),
        converted_on: None,
        created_on: date!(2020 - 05 - 20),
        responsible: None,
        opinion_id: None,
    };
    let (open, done) = (
        commitment("open the fund", CommitmentState::Open),
        commitment("publish the rules", CommitmentState::Converted),
    );
    s.commitments = vec![open.clone(), done.clone()];
    let banli_db::Pool::Sqlite(p) = store.pool() else {
        panic!("SQLite")
    };
    let mut tx = p.begin().await.expect("tx");
    banli_followup::store::sqlite::save(
        &mut tx,
        store.timers(),
        &s.id.to_string(),
        s.version,
        &serde_json::to_string(&s).expect("json"),
        &[],
        &[],
        banli_followup::store::Changed::ALL,
        &profile.reminders,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .expect("save");
    banli_followup::store::sqlite::sync_commitments(&mut tx, store.timers(), &s)
        .await
        .expect("timers");
    tx.commit().await.expect("commit");
    let timer = |id| {
        let store = store.clone();
        async move {
            store
                .timers()
                .get(store.pool(), &banli_followup::store::commitment_key(id))
                .await
                .expect("read")
        }
    };
    assert!(timer(open.id).await.is_some_and(|t| t.state == "pending"));
    assert!(
        timer(done.id).await.is_none(),
        "a converted commitment has no timer"
    );

    let runner = tokio::spawn(banli_timers::run(
        store.db().clone(),
        store.timers().clone(),
        RunOptions {
            owner: "r".into(),
            batch: 64,
            lease: Duration::from_secs(5),
            idle: Duration::from_millis(50),
        },
        AlertFirer::new(store.clone()).with_office(w.office_agency.id),
        Arc::new(TimerStats::default()),
        std::future::pending(),
    ));
    for _ in 0..1000 {
        if timer(open.id).await.is_some_and(|t| t.state != "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    let raised: Vec<banli_domain::supervision::SupervisionNotice> = store
        .notices(None, None, 500)
        .await
        .expect("notices")
        .into_iter()
        .map(|(n, _)| serde_json::from_str(&n).expect("a notice"))
        .filter(|n: &banli_domain::supervision::SupervisionNotice| {
            n.trigger == banli_domain::supervision::Trigger::Overdue
        })
        .collect();
    // Once (unanswered, it then climbs the ladder by escalation, as any notice does).
    assert_eq!(raised.len(), 1, "{raised:?}");
    let n = &raised[0];
    assert_eq!(n.trigger, banli_domain::supervision::Trigger::Overdue);
    assert_eq!((n.target, n.issuer), (lead.agency, w.office_agency.id));
    assert!(
        n.body.contains("open the fund") && n.body.contains("2020-06-30"),
        "{}",
        n.body
    );
    assert_eq!(n.suggestions, vec![s.id]);
    assert_eq!(
        n.issued_on,
        date!(2020 - 07 - 01),
        "the day after the target"
    );
}

/// The owner of an open commitment owes the deputy word of its progress every three months
/// (the profile): a reminder is scheduled from the commitment's creation, moved by a progress
/// report, and goes out once when it falls due.
#[tokio::test]
async fn progress_word_on_open_commitments() {
    use banli_domain::suggestion::{Commitment, CommitmentState, ProgressReport, Suggestion};

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(false).await;
    assert_eq!(profile.reminders.progress_notice_months, 3);
    let mut s: Suggestion = store
        .replicas(None)
        .await
        .expect("replicas")
        .pop()
        .expect("the replica");
    let lead = s.assignments[0].clone();
    let commitment = Commitment {
        evidence_documents: Vec::new(),
        id: banli_domain::ids::CommitmentId::new(),
        assignment_id: lead.id,
        measure: "open the fund".into(),
        owner: lead.agency,
        division: None,
        target_date: date!(2021 - 12 - 31),
        state: CommitmentState::Open,
        progress: vec![],
        evidence: String::new(),
        converted_on: None,
        created_on: date!(2020 - 05 - 20),
        responsible: None,
        opinion_id: None,
    };
    let before = s.clone();
    s.commitments = vec![commitment.clone()];
    let sync = |before: Suggestion, after: Suggestion| {
        let (store, r) = (store.clone(), profile.reminders.clone());
        async move {
            let banli_db::Pool::Sqlite(p) = store.pool() else {
                panic!("SQLite")
            };
            let mut tx = p.begin().await.expect("tx");
            banli_followup::store::sqlite::sync_progress(
                &mut tx,
                store.timers(),
                Some(&before),
                &after,
                &r,
            )
            .await
            .expect("sync");
            tx.commit().await.expect("commit");
        }
    };
    sync(before, s.clone()).await;
    let key = |due: &str| format!("progress:{}:{due}", commitment.id);
    let state = |k: String| {
        let store = store.clone();
        async move {
            store
                .timers()
                .get(store.pool(), &k)
                .await
                .expect("read")
                .map(|t| t.state)
        }
    };
    assert_eq!(state(key("2020-08-20")).await.as_deref(), Some("pending"));
    // A progress report on 10 August: the next word is due three months after it.
    let mut reported = s.clone();
    reported.commitments[0].progress.push(ProgressReport {
        note: "the fund's rules are drafted".into(),
        on: date!(2020 - 08 - 10),
        to_deputy: true,
    });
    sync(s.clone(), reported.clone()).await;
    assert_eq!(state(key("2020-08-20")).await.as_deref(), Some("cancelled"));
    assert_eq!(state(key("2020-11-10")).await.as_deref(), Some("pending"));
    // An internal note (not addressed to the deputies) is not the word they are owed: the
    // reminder stays where it was, and so does the notice after the grace period.
    let overdue_key = |due: &str| format!("progress-overdue:{}:{due}", commitment.id);
    assert_eq!(
        state(overdue_key("2020-11-10")).await.as_deref(),
        Some("pending")
    );
    let mut noted = reported.clone();
    noted.commitments[0].progress.push(ProgressReport {
        note: "internal: budget line requested".into(),
        on: date!(2020 - 09 - 01),
        to_deputy: false,
    });
    sync(reported.clone(), noted.clone()).await;
    assert_eq!(state(key("2020-11-10")).await.as_deref(), Some("pending"));
    assert_eq!(state(key("2020-12-01")).await, None);
    let reported = noted;

    let runner = tokio::spawn(banli_timers::run(
        store.db().clone(),
        store.timers().clone(),
        RunOptions {
            owner: "r".into(),
            batch: 64,
            lease: Duration::from_secs(5),
            idle: Duration::from_millis(20),
        },
        AlertFirer::new(store.clone()).with_office(w.office_agency.id),
        Arc::new(TimerStats::default()),
        std::future::pending(),
    ));
    for _ in 0..1000 {
        if state(key("2020-11-10")).await.as_deref() != Some("pending")
            && state(overdue_key("2020-11-10")).await.as_deref() != Some("pending")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    let sent: Vec<_> = store
        .alerts(None, 500, false)
        .await
        .expect("alerts")
        .into_iter()
        .filter(|a| a.kind == "progress_notice")
        .collect();
    assert_eq!(sent.len(), 2, "the reminder and the late flag: {sent:?}");
    assert_eq!(sent.iter().filter(|a| a.level == "late").count(), 1);
    let sent: Vec<_> = sent.into_iter().filter(|a| a.level == "reminder").collect();
    assert_eq!(
        (
            sent[0].due,
            sent[0].agency_id.as_str(),
            sent[0].level.as_str()
        ),
        (date!(2020 - 11 - 10), w.lead.as_str(), "reminder")
    );
    // Still owed after the profile's grace period (10 days): a supervision notice to the owner.
    assert_eq!(profile.reminders.progress_grace_days, 10);
    let raised: Vec<banli_domain::supervision::SupervisionNotice> = store
        .notices(None, None, 500)
        .await
        .expect("notices")
        .into_iter()
        .map(|(n, _)| serde_json::from_str(&n).expect("a notice"))
        .filter(|n: &banli_domain::supervision::SupervisionNotice| {
            n.trigger == banli_domain::supervision::Trigger::ProgressOverdue
        })
        .collect();
    assert_eq!(raised.len(), 1, "{raised:?}");
    let n = &raised[0];
    assert_eq!((n.target, n.issuer), (lead.agency, w.office_agency.id));
    assert_eq!(n.issued_on, date!(2020 - 11 - 20));
    assert!(n.body.contains("2020-11-10"), "{}", n.body);
    // Converted: nothing more is owed, nothing new is scheduled.
    let pending = store.timers().pending(store.pool()).await.expect("count");
    let mut done = reported.clone();
    done.commitments[0].state = CommitmentState::Converted;
    done.commitments[0].progress.push(ProgressReport {
        note: "the fund is open".into(),
        on: date!(2020 - 12 - 01),
        to_deputy: true,
    });
    sync(reported, done).await;
    assert_eq!(
        store.timers().pending(store.pool()).await.expect("count"),
        pending
    );
    assert_eq!(
        state(key("2021-03-01")).await,
        None,
        "no reminder after conversion"
    );
}
