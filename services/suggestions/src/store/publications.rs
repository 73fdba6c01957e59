//! 公开答复: the publication rows (`reply_publications`) — which replies are due for publication,
//! and what the public reads of those published. Written with the events that move them.

use banli_db::on_pool;
use banli_domain::ids::{AgencyId, SuggestionId};
use banli_domain::suggestion::{Suggestion, SuggestionEvent};
use sqlx::FromRow;
use time::Date;

use super::{Store, StoreError, suggestion_ids};

/// One row as written: a reply due for publication (the public columns empty) or published.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublicationRow {
    pub reply_id: String,
    pub suggestion_id: String,
    pub due: Option<Date>,
    pub published_on: Option<Date>,
    pub agency_id: Option<String>,
    pub number: Option<String>,
    pub title: Option<String>,
    pub class: Option<String>,
    pub reply_type: Option<String>,
    pub document_number: Option<String>,
    pub replied_on: Option<Date>,
    pub body: Option<String>,
    pub disclosure: Option<String>,
    pub automatic: bool,
}

/// What a batch of events does to the rows: each reply's last word (a row, or its deletion).
#[derive(Debug, Default)]
pub(super) struct PublicationOps {
    pub upserts: Vec<PublicationRow>,
    pub deletes: Vec<String>,
}

/// The row changes of `events`, against the state `after` them. Nothing for the events that do
/// not touch a publication (most of them): the write path stays as it was.
pub(super) fn ops(after: &Suggestion, events: &[&SuggestionEvent]) -> PublicationOps {
    let mut last: Vec<(String, Option<PublicationRow>)> = Vec::new();
    let mut put = |id: String, row: Option<PublicationRow>| {
        last.retain(|(x, _)| *x != id);
        last.push((id, row));
    };
    let row = |reply_id: banli_domain::ids::ReplyId| -> Option<PublicationRow> {
        let r = after.replies.iter().find(|r| r.id == reply_id)?;
        let mut row = PublicationRow {
            reply_id: r.id.to_string(),
            suggestion_id: after.id.to_string(),
            due: r.publication_due.as_ref().map(|d| d.due),
            ..Default::default()
        };
        if let Some(p) = r.publication.as_ref().filter(|p| p.withdrawn.is_none()) {
            let d = &after.details;
            row.published_on = Some(p.on);
            row.agency_id = after
                .assignment(r.assignment_id)
                .map(|a| a.agency.to_string());
            row.number = Some(d.number.clone());
            row.title = Some(p.title.clone());
            row.class = Some(r.class.as_str().to_owned());
            row.reply_type = Some(r.reply_type.as_str().to_owned());
            row.document_number = Some(r.document_number.clone());
            row.replied_on = Some(r.on);
            row.body = p.body.clone();
            row.disclosure = Some(
                serde_json::to_value(d.disclosure)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            );
            row.automatic = p.automatic;
        }
        Some(row)
    };
    for e in events {
        match e {
            SuggestionEvent::ReplyIssued(e) if e.reply.publication_due.is_some() => {
                put(e.reply.id.to_string(), row(e.reply.id));
            }
            SuggestionEvent::ReplyPublished(e) => put(e.reply_id.to_string(), row(e.reply_id)),
            SuggestionEvent::PublicationWithdrawn(e) => put(e.reply_id.to_string(), None),
            SuggestionEvent::ReplyReviewed(e) if !e.review.accepted => {
                put(e.reply_id.to_string(), None)
            }
            SuggestionEvent::Withdrawn(_) => {
                for r in after.replies.iter().filter(|r| r.publication.is_none()) {
                    put(r.id.to_string(), None);
                }
            }
            _ => {}
        }
    }
    let mut out = PublicationOps::default();
    for (id, row) in last {
        match row {
            Some(r) => out.upserts.push(r),
            None => out.deletes.push(id),
        }
    }
    out
}

/// A published reply as the public pages read it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PublicReplyRow {
    pub reply_id: String,
    pub suggestion_id: String,
    pub published_on: Date,
    pub agency_id: String,
    pub agency_name: Option<String>,
    pub number: String,
    pub title: String,
    pub class: String,
    pub reply_type: String,
    pub document_number: String,
    pub replied_on: Date,
    pub body: Option<String>,
    pub disclosure: String,
    pub automatic: bool,
}

const PUBLIC_COLUMNS: &str = "p.reply_id, p.suggestion_id, p.published_on, p.agency_id, a.name AS agency_name, p.number, p.title, p.class, p.reply_type, p.document_number, p.replied_on, p.body, p.disclosure, p.automatic";

impl Store {
    /// Published replies, newest first, after `after` (the last row of the previous page:
    /// its publication date and reply id), of `agency` when given.
    pub async fn public_replies(
        &self,
        after: Option<(Date, String)>,
        agency: Option<AgencyId>,
        limit: u32,
    ) -> Result<Vec<PublicReplyRow>, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        // One statement per shape, so that each is a range seek on its index (a cursor as a
        // row value, no OR of parameters): pages deep in the list cost what the first does.
        let mut sql = format!(
            "SELECT {PUBLIC_COLUMNS} FROM reply_publications p LEFT JOIN agencies a ON a.id = p.agency_id \
             WHERE p.published_on IS NOT NULL"
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if agency.is_some() {
            sql.push_str(&format!(" AND p.agency_id = {}", next()));
        }
        if after.is_some() {
            let (d, id) = (next(), next());
            sql.push_str(&format!(" AND (p.published_on, p.reply_id) < ({d}, {id})"));
        }
        sql.push_str(&format!(
            " ORDER BY p.published_on DESC, p.reply_id DESC LIMIT {}",
            next()
        ));
        let agency = agency.map(|a| a.to_string());
        let rows: Vec<PublicReplyRow> = on_pool!(self.pool(), p => {
            // Only placeholders and the constant column list are spliced in; every value is bound.
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            if let Some(a) = &agency {
                q = q.bind(a.clone());
            }
            if let Some((d, id)) = &after {
                q = q.bind(*d).bind(id.clone());
            }
            q.bind(limit).fetch_all(p).await?
        });
        Ok(rows)
    }

    /// One published reply, or `None` (unknown, not published, withdrawn).
    pub async fn public_reply(&self, reply_id: &str) -> Result<Option<PublicReplyRow>, StoreError> {
        let sql = format!(
            "SELECT {PUBLIC_COLUMNS} FROM reply_publications p LEFT JOIN agencies a ON a.id = p.agency_id \
             WHERE p.reply_id = $1 AND p.published_on IS NOT NULL"
        );
        let row: Option<PublicReplyRow> = on_pool!(self.pool(), p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(reply_id.to_owned())
                .fetch_optional(p)
                .await?
        });
        Ok(row)
    }

    /// The suggestions with a reply whose publication date is before `today` and that is not
    /// published.
    pub async fn publications_due(
        &self,
        today: Date,
        limit: u32,
    ) -> Result<Vec<SuggestionId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT DISTINCT suggestion_id FROM reply_publications \
             WHERE published_on IS NULL AND due < $1 ORDER BY suggestion_id LIMIT $2")
            .bind(today)
            .bind(i64::from(limit.clamp(1, 100_000)))
            .fetch_all(p)
            .await)?;
        suggestion_ids(rows)
    }

    /// Writes publication rows directly, in batches: for benchmarks and tests that need many
    /// published replies without running every lifecycle (the platform writes them with the
    /// events).
    pub async fn seed_publications(&self, rows: &[PublicationRow]) -> Result<(), StoreError> {
        for chunk in rows.chunks(500) {
            let chunk = chunk.to_vec();
            self.write(move |pool| async move {
                match &pool {
                    banli_db::Pool::Sqlite(p) => {
                        let mut tx = p.begin().await?;
                        for r in &chunk {
                            sqlite::upsert(&mut tx, r).await?;
                        }
                        tx.commit().await?;
                    }
                    banli_db::Pool::Postgres(p) => {
                        let mut tx = p.begin().await?;
                        for r in &chunk {
                            postgres::upsert(&mut tx, r).await?;
                        }
                        tx.commit().await?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        }
        Ok(())
    }
}

const UPSERT: &str = "INSERT INTO reply_publications (reply_id, suggestion_id, due, published_on, agency_id, number, title, class, reply_type, document_number, replied_on, body, disclosure, automatic) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT (reply_id) DO UPDATE SET due = excluded.due, published_on = excluded.published_on, agency_id = excluded.agency_id, number = excluded.number, title = excluded.title, class = excluded.class, reply_type = excluded.reply_type, document_number = excluded.document_number, replied_on = excluded.replied_on, body = excluded.body, disclosure = excluded.disclosure, automatic = excluded.automatic";

macro_rules! upsert_fn {
    ($db:ty) => {
        pub(crate) async fn upsert(
            c: &mut <$db as sqlx::Database>::Connection,
            r: &PublicationRow,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(UPSERT)
                .bind(&r.reply_id)
                .bind(&r.suggestion_id)
                .bind(r.due)
                .bind(r.published_on)
                .bind(&r.agency_id)
                .bind(&r.number)
                .bind(&r.title)
                .bind(&r.class)
                .bind(&r.reply_type)
                .bind(&r.document_number)
                .bind(r.replied_on)
                .bind(&r.body)
                .bind(&r.disclosure)
                .bind(r.automatic)
                .execute(&mut *c)
                .await?;
            Ok(())
        }
    };
}

pub(super) mod sqlite {
    use super::*;
    upsert_fn!(sqlx::Sqlite);

    /// Applies `ops` in the append's transaction (on PostgreSQL they are part of the append's
    /// one statement).
    pub(crate) async fn apply(
        c: &mut sqlx::SqliteConnection,
        ops: &PublicationOps,
    ) -> Result<(), sqlx::Error> {
        for id in &ops.deletes {
            sqlx::query("DELETE FROM reply_publications WHERE reply_id = $1")
                .bind(id)
                .execute(&mut *c)
                .await?;
        }
        for r in &ops.upserts {
            upsert(&mut *c, r).await?;
        }
        Ok(())
    }
}

pub(super) mod postgres {
    use super::*;
    upsert_fn!(sqlx::Postgres);
}
