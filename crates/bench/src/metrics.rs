//! Metrics over 1,000,000 stored assignments: `Store::counts` (every count of every rate, summed
//! from the per-day counts) for one agency, as of today and as of a past day, beside
//! `SELECT count(*)` over the per-assignment table in the same run. A session scope reads the
//! per-assignment rows instead, shown for comparison.
//!
//! The rows are written through the service's own import path from synthetic suggestions
//! (`banli_followup::synthetic`): 1 to 4 assignments each over 100 agencies whose shares
//! follow a Zipf law (exponent 0.8), so the largest agency holds about an eighth of the rows.

use std::time::Instant;

use anyhow::{Context, Result};
use banli_db::testing::TestDb;
use banli_db::{Pool, on_pool};
use banli_domain::ids::{AgencyId, SessionId};
use banli_followup::store::{MetricsQuery, Store};
use banli_followup::synthetic::{Rng, random_suggestion};
use time::macros::date;

use crate::Backend;

const AGENCIES: usize = 100;

/// A scoped query: its label, agency, category, lead deputy, delegation and topic.
type Scope<'a> = (
    &'a str,
    Option<AgencyId>,
    Option<&'a str>,
    Option<String>,
    Option<&'a str>,
    Option<String>,
);

/// The items a topic of the bench links: as many as a systemic issue followed over years
/// gathers (the demo's SME-finance topic links a handful; a province-wide one, hundreds).
const TOPIC_ITEMS: usize = 500;
const REPS: usize = 40;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn timed<F, Fut, T>(f: F) -> Result<(f64, f64)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    f().await?; // warm
    let mut ms = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        let t = Instant::now();
        f().await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((pct(&mut ms, 0.5), pct(&mut ms, 0.95)))
}

pub async fn run(backend: Backend, assignments: u64) -> Result<()> {
    println!("\n== metrics on {backend:?}: {assignments} assignments over {AGENCIES} agencies");
    let db = match backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await.context("PostgreSQL is needed")?,
    };
    let store = Store::new(db.pool.clone());
    let consumer = banli_followup::consumer::EventConsumer::new(
        store.clone(),
        banli_domain::RuleProfile::hunan().reminders,
    );
    store.migrate(consumer.inbox()).await?;

    let agencies: Vec<AgencyId> = (0..AGENCIES).map(|_| AgencyId::new()).collect();
    let weights: Vec<f64> = (1..=AGENCIES).map(|i| (i as f64).powf(-0.8)).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(AGENCIES);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cumulative.push(acc);
    }
    let pick = |r: &mut Rng| {
        let u = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        cumulative
            .iter()
            .position(|c| u < *c)
            .unwrap_or(AGENCIES - 1)
    };
    let sessions = [SessionId::new(), SessionId::new()];
    let mut rng = Rng(0xBA11_5EED_0000_0001);
    let started = Instant::now();
    let mut stored = 0u64;
    let mut n = 0usize;
    while stored < assignments {
        let mut chunk = Vec::with_capacity(20_000);
        while chunk.len() < 20_000 && stored < assignments {
            let s = random_suggestion(&mut rng, &agencies, pick, sessions[n % 2]);
            n += 1;
            stored += s.assignments.len() as u64;
            chunk.push(s);
        }
        store.import_facts(chunk).await?;
    }
    match store.pool() {
        Pool::Sqlite(p) => {
            sqlx::query("ANALYZE").execute(p).await?;
        }
        Pool::Postgres(p) => {
            for t in [
                "followup_facts",
                "followup_fact_classes",
                "followup_fact_feedback",
                "followup_fact_commitments",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {t}")))
                    .execute(p)
                    .await?;
            }
        }
    }
    println!(
        "stored {stored} assignments of {n} suggestions in {:.1} s (the service's import path)",
        started.elapsed().as_secs_f64()
    );

    let rows_of = |a: Option<AgencyId>| {
        let pool = store.pool().clone();
        async move {
            let (c,): (i64,) = on_pool!(&pool, p => sqlx::query_as(
                "SELECT count(*) FROM followup_facts WHERE $1 = '' OR agency_id = $1")
                .bind(a.map(|a| a.to_string()).unwrap_or_default())
                .fetch_one(p)
                .await)?;
            Ok::<i64, anyhow::Error>(c)
        }
    };
    let (base50, base95) = timed(|| rows_of(None)).await?;
    let today = date!(2026 - 11 - 27);
    let query = |agency: Option<AgencyId>, as_of, year, session: Option<SessionId>| MetricsQuery {
        as_of,
        agency: agency.map(|a| a.to_string()),
        division: None,
        role: None,
        session: session.map(|s| s.to_string()),
        category: None,
        deputy: None,
        topic: None,
        delegation: None,
        year,
    };
    let largest = agencies[0];
    let median = agencies[AGENCIES / 2];
    println!(
        "{:<58} {:>9} {:>9} {:>9}",
        "query", "rows", "p50 ms", "p95 ms"
    );
    println!(
        "{:<58} {:>9} {:>9.2} {:>9.2}",
        "baseline: SELECT count(*) FROM followup_facts",
        rows_of(None).await?,
        base50,
        base95
    );
    for (label, agency, as_of, year, session) in [
        (
            "metrics, largest agency, as of today",
            Some(largest),
            today,
            None,
            None,
        ),
        (
            "metrics, largest agency, as of 2020-06-30",
            Some(largest),
            date!(2020 - 06 - 30),
            None,
            None,
        ),
        (
            "metrics, largest agency, year 2020, as of today",
            Some(largest),
            today,
            Some(2020),
            None,
        ),
        (
            "metrics, median agency, as of today",
            Some(median),
            today,
            None,
            None,
        ),
        (
            "metrics, every agency (province-wide), as of today",
            None,
            today,
            None,
            None,
        ),
        (
            "by session (per-assignment rows), largest agency",
            Some(largest),
            today,
            None,
            Some(sessions[0]),
        ),
    ] {
        let q = query(agency, as_of, year, session);
        let (p50, p95) =
            timed(|| async { store.counts(&q).await.map_err(anyhow::Error::from) }).await?;
        let c = store.counts(&q).await?;
        println!(
            "{label:<58} {:>9} {p50:>9.2} {p95:>9.2}",
            rows_of(agency).await?
        );
        anyhow::ensure!(c.live > 0, "the query counted nothing");
    }
    // The scopes of systemic follow-through: a category (one of twelve), a category within the
    // largest agency, one deputy's items (per-assignment rows, by their indexes).
    let category = banli_followup::synthetic::CATEGORIES[1];
    let deputy: Option<String> = on_pool!(store.pool(), p => sqlx::query_as::<_, (String,)>(
        "SELECT lead_deputy_id FROM followup_facts LIMIT 1")
        .fetch_optional(p)
        .await)?
    .map(|(d,)| d);
    let delegation = banli_followup::synthetic::DELEGATIONS[0];
    // A topic linking items of the category across years, through the service's own path.
    let topic = "bench-topic-sme-finance".to_owned();
    store
        .create_topic(banli_followup::topics::TopicRow {
            id: topic.clone(),
            owner: String::new(),
            title: "中小企业融资难".into(),
            description: String::new(),
            created_on: today,
            version: 1,
        })
        .await?;
    let items: Vec<(String,)> = on_pool!(store.pool(), p => sqlx::query_as(
        "SELECT DISTINCT suggestion_id FROM followup_facts WHERE category = $1 ORDER BY suggestion_id LIMIT $2")
        .bind(category)
        .bind(TOPIC_ITEMS as i64)
        .fetch_all(p)
        .await)?;
    anyhow::ensure!(
        items.len() == TOPIC_ITEMS,
        "the topic links {} items, not {TOPIC_ITEMS}",
        items.len()
    );
    for (id,) in &items {
        store.link_topic_item(&topic, id, today, true).await?;
    }
    let scopes: [Scope<'_>; 6] = [
        (
            "by category (per-day counts), province-wide",
            None,
            Some(category),
            None,
            None,
            None,
        ),
        (
            "by category (per-day counts), largest agency",
            Some(largest),
            Some(category),
            None,
            None,
            None,
        ),
        (
            "by delegation (per-day counts), province-wide",
            None,
            None,
            None,
            Some(delegation),
            None,
        ),
        (
            "by delegation (per-day counts), largest agency",
            Some(largest),
            None,
            None,
            Some(delegation),
            None,
        ),
        (
            "by deputy (per-assignment rows), province-wide",
            None,
            None,
            deputy.clone(),
            None,
            None,
        ),
        (
            "by topic of 500 items (per-assignment rows)",
            None,
            None,
            None,
            None,
            Some(topic.clone()),
        ),
    ];
    for (label, agency, category, deputy, delegation, topic) in scopes {
        let q = MetricsQuery {
            category: category.map(str::to_owned),
            deputy,
            delegation: delegation.map(str::to_owned),
            topic,
            ..query(agency, today, None, None)
        };
        let (p50, p95) =
            timed(|| async { store.counts(&q).await.map_err(anyhow::Error::from) }).await?;
        let c = store.counts(&q).await?;
        println!("{label:<58} {:>9} {p50:>9.2} {p95:>9.2}", c.live);
        anyhow::ensure!(c.live > 0, "the query counted nothing");
    }
    // A breakdown (GET /v1/metrics/breakdown): the groups' values, then one query per group,
    // as the service's breakdown does.
    for (label, by, agency) in [
        (
            "breakdown by category (12 groups), province-wide",
            banli_followup::store::GroupColumn::Category,
            None,
        ),
        (
            "breakdown by delegation (14 groups), largest agency",
            banli_followup::store::GroupColumn::Delegation,
            Some(largest),
        ),
    ] {
        let run = || async {
            let a = agency.map(|a: AgencyId| a.to_string());
            let keys = store.group_values(by, a.as_deref(), None, 501).await?;
            let mut live = 0;
            for k in keys {
                let q = MetricsQuery {
                    category: (by == banli_followup::store::GroupColumn::Category)
                        .then(|| k.clone()),
                    delegation: (by == banli_followup::store::GroupColumn::Delegation)
                        .then(|| k.clone()),
                    ..query(agency, today, None, None)
                };
                live += store.counts(&q).await?.live;
            }
            Ok::<u64, anyhow::Error>(live)
        };
        let (p50, p95) = timed(run).await?;
        let live = run().await?;
        println!("{label:<58} {live:>9} {p50:>9.2} {p95:>9.2}");
        anyhow::ensure!(live > 0, "the breakdown counted nothing");
    }
    println!(
        "goal: metrics for one agency, and by category, delegation, deputy or topic, over 1,000,000 assignments p95 <= 100 ms"
    );
    Ok(())
}
