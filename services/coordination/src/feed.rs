//! The per-agency event feed (事件订阅) for agencies' own systems: every event of the suggestions
//! an agency is party to, in one stable order, resumable from any cursor. The consumer writes an
//! agency's rows in the transaction that consumes the event; REST pages and the gRPC `Watch`
//! stream read them.

use banli_api::{AppError, ErrorCode, Principal};
use banli_db::{Pool, on_pool};
use banli_domain::Role;
use banli_domain::ids::AgencyId;
use serde::Serialize;
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// The most items one page holds.
pub const MAX_PAGE: u32 = 1000;

/// The feed row written once for every agency's feed (the audit log's checkpoints): no agency
/// has this id. The queries below write it out as `'00000000-0000-0000-0000-000000000000'`.
pub const EVERY_AGENCY: AgencyId = AgencyId(Uuid::nil());

/// One event in one agency's feed, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub agency_id: AgencyId,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: u64,
    /// RFC 3339.
    pub occurred_at: String,
    /// The event's payload, JSON.
    pub payload: String,
}

/// One event as a feed answers it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedRow {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub occurred_at: String,
    pub payload: String,
}

/// A feed item on the wire: the row with its cursor, the payload as JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedItem {
    /// Resume after this item: pass it as `after`.
    pub cursor: String,
    pub event_id: String,
    /// e.g. `suggestion.replied`.
    pub event_type: String,
    /// `suggestion`.
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The aggregate's version after this event: per aggregate, versions arrive in order.
    pub aggregate_version: u64,
    pub occurred_at: String,
    #[schema(value_type = Object)]
    pub payload: Box<serde_json::value::RawValue>,
}

/// A page of a feed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedPage {
    pub agency_id: String,
    pub items: Vec<FeedItem>,
    /// Where the next call starts (`after`): the last item's cursor, or the one given when
    /// nothing is new.
    pub next_cursor: String,
}

/// A position in one agency's feed. On the wire: 48 hexadecimal digits, the agency and the
/// sequence number, so that a cursor of another agency's feed is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub agency: AgencyId,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!(
            "{:032x}{:016x}",
            self.agency.0.as_u128(),
            self.seq.max(0) as u64
        )
    }

    /// Reads `after` for `agency`'s feed: absent or empty is the start; `now` is the current end.
    pub fn parse(text: &str, agency: AgencyId) -> Result<Cursor, AppError> {
        let bad = || {
            AppError::new(
                ErrorCode::MalformedRequest,
                "`after` is not a feed cursor: pass the `cursor` of an item or the `next_cursor` of a page as it came (48 hexadecimal digits), `now`, or nothing to start at the beginning",
            )
        };
        if text.is_empty() {
            return Ok(Cursor { agency, seq: 0 });
        }
        if text.len() != 48 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let owner = u128::from_str_radix(&text[..32], 16).map_err(|_| bad())?;
        let seq = u64::from_str_radix(&text[32..], 16).map_err(|_| bad())?;
        if owner != agency.0.as_u128() {
            return Err(AppError::new(
                ErrorCode::MalformedRequest,
                format!(
                    "`after` is a cursor of another agency's feed, not of {}; use the cursors of this feed",
                    agency.0
                ),
            ));
        }
        let seq = i64::try_from(seq).map_err(|_| bad())?;
        Ok(Cursor { agency, seq })
    }
}

/// Whose feed a caller reads: an agency key its own; the assigning office and auditors any
/// agency's (`agency_id` required); deputies none.
pub fn feed_of(p: &Principal, agency_id: Option<Uuid>) -> Result<AgencyId, AppError> {
    match p.role {
        Role::AssigningOffice | Role::Auditor => agency_id.map(AgencyId).ok_or_else(|| {
            AppError::malformed(
                "give `agency_id`: the office and auditors read one agency's feed at a time",
            )
        }),
        r if r.is_agency_role() => {
            let own = p
                .agency
                .ok_or_else(|| AppError::forbidden("this key is not bound to an agency"))?;
            match agency_id {
                Some(a) if a != own.0 => Err(AppError::forbidden(
                    "an agency key reads only its own agency's feed; leave agency_id out or use your own",
                )),
                _ => Ok(own),
            }
        }
        _ => Err(AppError::forbidden(
            "feeds are for agencies' systems: use an agency key (or the office's, with agency_id)",
        )),
    }
}

/// Whether a caller's feeds and task lists leave out confidential suggestions (涉密): those of
/// a reader who reads any agency's but may not read confidential items (auditors). An agency's
/// feed holds only the items it is or was party to, and the office reads everything.
pub fn hides_confidential(p: &Principal) -> bool {
    p.role.lists_without_confidential()
}

impl FeedRow {
    pub fn item(self, agency: AgencyId) -> Result<FeedItem, StoreError> {
        let payload = serde_json::value::RawValue::from_string(self.payload)
            .map_err(|e| StoreError::Corrupt(format!("a feed row's payload: {e}")))?;
        Ok(FeedItem {
            cursor: Cursor {
                agency,
                seq: self.seq,
            }
            .encode(),
            event_id: self.event_id,
            event_type: self.event_type,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            aggregate_version: self.aggregate_version.max(0) as u64,
            occurred_at: self.occurred_at,
            payload,
        })
    }
}

/// Feed writes within a caller's transaction (SQLite: one statement for all the rows, in their
/// order).
pub mod sqlite {
    use super::*;

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
    use super::*;

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
