//! Reading suggestions back in lists (the list columns), the recomputation bookkeeping and the
//! outbox as the relay reads it.

use banli_db::on_pool;
use banli_domain::ids::SuggestionId;
use time::OffsetDateTime;

use super::rows::SummaryRow;
use super::suggestions::*;
use super::{Store, StoreError};

/// A value bound to a list query's placeholder.
enum Bind {
    Text(String),
    Date(time::Date),
}

impl Store {
    /// Lists suggestions by filter, in id order, from the cursor.
    pub async fn list(&self, f: &ListFilter) -> Result<Vec<SuggestionSummary>, StoreError> {
        let mut sql = String::from(
            "SELECT s.id, s.session_id, s.number, s.state, s.version, s.title, s.key_supervised FROM suggestions s WHERE 1 = 1",
        );
        let mut binds = Vec::new();
        let mut push = |sql: &mut String, clause: &str, b: Bind| {
            binds.push(b);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(s) = f.session_id {
            push(&mut sql, " AND s.session_id = ?", Bind::Text(s.to_string()));
        }
        if let Some(state) = &f.state {
            push(&mut sql, " AND s.state = ?", Bind::Text(state.clone()));
        }
        if f.key_only {
            sql.push_str(" AND s.key_supervised = TRUE");
        }
        if f.without_confidential {
            sql.push_str(" AND s.confidential = FALSE");
        }
        if let Some(d) = f.deputy_id {
            push(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM suggestion_deputies d WHERE d.suggestion_id = s.id AND d.deputy_id = ?)",
                Bind::Text(d.to_string()),
            );
        }
        if f.agency_id.is_some() || f.role.is_some() || f.overdue_on.is_some() {
            sql.push_str(" AND EXISTS (SELECT 1 FROM suggestion_assignments a WHERE a.suggestion_id = s.id AND a.state <> 'superseded'");
            if let Some(a) = f.agency_id {
                push(&mut sql, " AND a.agency_id = ?", Bind::Text(a.to_string()));
            }
            if let Some(r) = f.role {
                push(
                    &mut sql,
                    " AND a.role = ?",
                    Bind::Text(r.as_str().to_owned()),
                );
            }
            if let Some(d) = f.overdue_on {
                push(
                    &mut sql,
                    " AND a.reply_due < ? AND a.state IN ('pending_sign', 'accepted', 'adjustment_pending', 'in_handling', 're_handling') \
                     AND s.state IN ('assigned', 're_handling')",
                    Bind::Date(d),
                );
            }
            sql.push(')');
        }
        if let Some(after) = f.after {
            push(&mut sql, " AND s.id > ?", Bind::Text(after.to_string()));
        }
        let limit = f.limit.clamp(1, 1000);
        sql.push_str(&format!(" ORDER BY s.id LIMIT {limit}"));
        let rows: Vec<SummaryRow> = on_pool!(self.pool(), p => {
            // Built only from the constant fragments above; every value is bound.
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for b in &binds {
                q = match b {
                    Bind::Text(t) => q.bind(t.clone()),
                    Bind::Date(d) => q.bind(*d),
                };
            }
            q.fetch_all(p).await?
        });
        rows.into_iter()
            .map(|r| {
                let parse = |s: &str| {
                    s.parse()
                        .map_err(|_| StoreError::Corrupt(format!("bad id `{s}`")))
                };
                Ok(SuggestionSummary {
                    id: parse(&r.id)?,
                    session_id: r
                        .session_id
                        .parse()
                        .map_err(|_| StoreError::Corrupt(format!("bad id `{}`", r.session_id)))?,
                    number: r.number,
                    state: r.state,
                    version: r.version as u64,
                    title: r.title,
                    key_supervised: r.key_supervised,
                })
            })
            .collect()
    }

    /// Suggestions not in a terminal state, in id order after `after`: those whose deadlines may
    /// still move.
    pub async fn open_ids(
        &self,
        after: Option<SuggestionId>,
        limit: u32,
    ) -> Result<Vec<SuggestionId>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let rows: Vec<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id FROM suggestions WHERE id > $1 \
             AND state NOT IN ('not_accepted', 'converted_to_letter', 'closed', 'withdrawn') \
             ORDER BY id LIMIT $2")
            .bind(after)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(p)
            .await)?;
        suggestion_ids(rows)
    }

    /// The suggestions with a reply awaiting the assigning office's review (答复审查).
    pub async fn awaiting_review_ids(&self, limit: u32) -> Result<Vec<SuggestionId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT DISTINCT suggestion_id FROM suggestion_assignments \
             WHERE state = 'awaiting_review' ORDER BY suggestion_id LIMIT $1")
            .bind(i64::from(limit.clamp(1, 100_000)))
            .fetch_all(p)
            .await)?;
        suggestion_ids(rows)
    }

    /// True when open deadlines were already recomputed against calendar data `version`.
    pub async fn recomputed_against(&self, version: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT calendar_version FROM calendar_recomputations WHERE calendar_version = $1")
            .bind(version)
            .fetch_optional(p)
            .await)?;
        Ok(row.is_some())
    }

    /// Records a finished recomputation against calendar data `version`.
    pub async fn record_recomputation(
        &self,
        version: &str,
        examined: u64,
        moved: u64,
    ) -> Result<(), StoreError> {
        let (version, now) = (version.to_owned(), OffsetDateTime::now_utc());
        self.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query(
                "INSERT INTO calendar_recomputations (calendar_version, examined, moved, finished_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (calendar_version) DO UPDATE SET examined = excluded.examined, moved = excluded.moved, finished_at = excluded.finished_at")
                .bind(&version)
                .bind(examined as i64)
                .bind(moved as i64)
                .bind(now)
                .execute(p)
                .await
                .map(|_| ()))?;
            Ok(())
        })
        .await
    }

    /// Outbox rows not yet published, oldest first.
    pub async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox()
            .pending(self.pool(), limit)
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// Marks outbox rows as published.
    pub async fn mark_published(&self, seqs: &[i64], at: OffsetDateTime) -> Result<(), StoreError> {
        self.outbox()
            .mark_published(self.db(), seqs, at)
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// Suggestion ids as read from a one-column query.
pub(super) fn suggestion_ids(rows: Vec<(String,)>) -> Result<Vec<SuggestionId>, StoreError> {
    rows.into_iter()
        .map(|(id,)| {
            id.parse()
                .map_err(|_| StoreError::Corrupt(format!("bad id `{id}`")))
        })
        .collect()
}
