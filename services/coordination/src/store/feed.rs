//! The feed's SQL: rows written within a caller's transaction (the consumer's, the notice
//! consumers'), and the pages readers ask for.

use banli_db::{Pool, on_pool};
use banli_domain::ids::AgencyId;

use super::{Store, StoreError};
use crate::feed::{FeedEntry, FeedRow, MAX_PAGE};

/// Feed writes within a caller's transaction (SQLite: one statement for all the rows, in their
/// order).
pub mod sqlite {
    use crate::feed::FeedEntry;

    pub async fn insert(
        c: &mut sqlx::SqliteConnection,
        entries: &[FeedEntry],
    ) -> Result<(), sqlx::Error> {
        // One event's rows share everything but the agency: each event goes in once, with its
        // agencies in order, as JSON (SQLite has no arrays).
        let mut events = Vec::new();
        let mut rest = entries;
        while let Some(e) = rest.first() {
            let n = rest.iter().take_while(|x| x.event_id == e.event_id).count();
            let agencies: Vec<String> = rest[..n].iter().map(|x| x.agency_id.to_string()).collect();
            rest = &rest[n..];
            events.push(serde_json::json!([
                agencies,
                e.event_id.to_string(),
                e.event_type,
                e.aggregate_type,
                e.aggregate_id,
                e.aggregate_version,
                e.occurred_at,
                e.payload,
            ]));
        }
        if events.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO feed_entries (agency_id, event_id, event_type, aggregate_type, aggregate_id, aggregate_version, occurred_at, payload) \
             SELECT a.value, json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]'), json_extract(e.value, '$[3]'), \
             json_extract(e.value, '$[4]'), json_extract(e.value, '$[5]'), json_extract(e.value, '$[6]'), json_extract(e.value, '$[7]') \
             FROM json_each($1) e, json_each(e.value, '$[0]') a ORDER BY e.key, a.key",
        )
        .bind(serde_json::Value::Array(events).to_string())
        .execute(&mut *c)
        .await?;
        Ok(())
    }
}

/// Feed writes within a caller's transaction (PostgreSQL: one statement for all the rows, in
/// their order, after the feed writers' lock).
pub mod postgres {
    use crate::feed::FeedEntry;

    pub async fn insert(
        c: &mut sqlx::PgConnection,
        entries: &[FeedEntry],
    ) -> Result<(), sqlx::Error> {
        if entries.is_empty() {
            return Ok(());
        }
        // Feed writers are serialised until their transactions end, so that `seq` values
        // become visible in order (a reader past seq N never misses a later commit below N).
        // "banli.fd" as a number: one lock for every feed writer.
        sqlx::query("SELECT pg_advisory_xact_lock(7089066166749848676)")
            .execute(&mut *c)
            .await?;
        let col = |f: &dyn Fn(&FeedEntry) -> String| entries.iter().map(f).collect::<Vec<_>>();
        let versions: Vec<i64> = entries.iter().map(|e| e.aggregate_version as i64).collect();
        sqlx::query(
            "INSERT INTO feed_entries (agency_id, event_id, event_type, aggregate_type, aggregate_id, aggregate_version, occurred_at, payload) \
             SELECT a, e, t, at, ai, v, o, p FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[]) \
             WITH ORDINALITY AS x(a, e, t, at, ai, v, o, p, n) ORDER BY n",
        )
        .bind(col(&|e| e.agency_id.to_string()))
        .bind(col(&|e| e.event_id.to_string()))
        .bind(col(&|e| e.event_type.clone()))
        .bind(col(&|e| e.aggregate_type.clone()))
        .bind(col(&|e| e.aggregate_id.clone()))
        .bind(versions)
        .bind(col(&|e| e.occurred_at.clone()))
        .bind(col(&|e| e.payload.clone()))
        .execute(&mut *c)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Up to `limit` events of `agency`'s feed after `after`, in order; without the events of
    /// confidential suggestions when `hide_confidential` (a reader that is not party to them).
    pub async fn feed(
        &self,
        agency: AgencyId,
        after: i64,
        limit: u32,
        hide_confidential: bool,
    ) -> Result<Vec<FeedRow>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_PAGE));
        // The agency's rows and the rows for every agency, each read in index order. The shared
        // rows' id is written out (EVERY_AGENCY): as a parameter, PostgreSQL's generic plan
        // would walk the whole table by `seq` looking for rows that are rare. The filter is
        // in the statement, before the limit: a run of hidden rows never ends a page early.
        let sql = format!(
            "SELECT * FROM (SELECT seq, event_id, event_type, aggregate_type, aggregate_id, aggregate_version, occurred_at, payload \
               FROM feed_entries WHERE agency_id = $1 AND seq > $2{} ORDER BY seq LIMIT $3) AS own \
             UNION ALL SELECT * FROM (SELECT seq, event_id, event_type, aggregate_type, aggregate_id, aggregate_version, occurred_at, payload \
               FROM feed_entries WHERE agency_id = '00000000-0000-0000-0000-000000000000' AND seq > $2 ORDER BY seq LIMIT $3) AS every \
             ORDER BY seq LIMIT $3",
            if hide_confidential {
                " AND NOT (aggregate_type = 'suggestion' AND EXISTS (SELECT 1 FROM coordination_cases c \
                 WHERE c.suggestion_id = feed_entries.aggregate_id AND c.confidential))"
            } else {
                ""
            }
        );
        Ok(
            on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(agency.to_string())
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await)?,
        )
    }

    /// The last position of `agency`'s feed (0 when empty).
    pub async fn feed_end(&self, agency: AgencyId) -> Result<i64, StoreError> {
        let row: (Option<i64>,) = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM feed_entries WHERE agency_id = $1 \
             UNION ALL SELECT MAX(seq) AS m FROM feed_entries WHERE agency_id = '00000000-0000-0000-0000-000000000000') AS ends")
            .bind(agency.to_string())
            .fetch_one(p)
            .await)?;
        Ok(row.0.unwrap_or(0))
    }

    /// Appends feed rows in one transaction, outside the consumer (loading and benches).
    pub async fn append_feed(&self, entries: Vec<FeedEntry>) -> Result<(), StoreError> {
        self.db()
            .write(move |pool| async move {
                macro_rules! run {
                    ($p:expr, $module:ident) => {{
                        let mut tx = $p.begin().await?;
                        $module::insert(&mut tx, &entries).await?;
                        tx.commit().await?;
                    }};
                }
                match &pool {
                    Pool::Sqlite(p) => run!(p, sqlite),
                    Pool::Postgres(p) => run!(p, postgres),
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        self.feed_written();
        Ok(())
    }
}
