//! Deadline rows as tracked, and their bulk writes.

use super::*;

/// A deadline as its row stands, or will once its batch is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stored {
    assignment_id: String,
    kind: String,
    agency_id: String,
    due: Date,
    previous_due: Option<Date>,
    met: bool,
    /// Changed since it was read: written at the end of the batch.
    dirty: bool,
}

/// A deadline row as read and written in bulk: suggestion, assignment, kind, agency, due,
/// previous due, met.
pub type DeadlineValues = (String, String, String, String, Date, Option<Date>, bool);

/// The deadline and unit rows of a batch's suggestions: read in one query, moved in memory as
/// the batch's events move them (each event sees what the ones before it left, exactly as
/// if each had written its rows), written in two statements at the end.
#[derive(Debug, Default)]
pub struct DeadlineRows {
    by_suggestion: std::collections::HashMap<String, Vec<Stored>>,
    /// (agency, suggestion) rows to add to `followup_units`.
    units: std::collections::BTreeSet<(String, String)>,
}

impl DeadlineRows {
    /// The rows read for `ids` (a suggestion with none has none yet).
    pub(super) fn read(ids: &[String], rows: Vec<DeadlineValues>) -> DeadlineRows {
        let mut by_suggestion: std::collections::HashMap<String, Vec<Stored>> =
            ids.iter().map(|id| (id.clone(), Vec::new())).collect();
        for (suggestion, assignment_id, kind, agency_id, due, previous_due, met) in rows {
            by_suggestion.entry(suggestion).or_default().push(Stored {
                assignment_id,
                kind,
                agency_id,
                due,
                previous_due,
                met,
                dirty: false,
            });
        }
        DeadlineRows {
            by_suggestion,
            units: Default::default(),
        }
    }

    /// Moves suggestion `id`'s rows to `deadlines` (and notes its units); schedules the alerts
    /// of open deadlines (moving them when a due date moved) and cancels those of met or gone
    /// ones, in `ops`.
    #[allow(clippy::too_many_arguments)]
    pub fn track(
        &mut self,
        ops: &mut Ops,
        id: &str,
        units: &[String],
        deadlines: &[TrackedDeadline],
        changed: Changed,
        reminders: &Reminders,
        now: OffsetDateTime,
    ) {
        // The same assignments as the stored replica's: the units' rows stand.
        if changed.units {
            for a in deadlines
                .iter()
                .map(|d| d.agency.to_string())
                .chain(units.iter().cloned())
            {
                self.units.insert((a, id.to_string()));
            }
        }
        // The same deadlines as the stored replica's: their rows and timers stand.
        if !changed.deadlines {
            return;
        }
        let rows = self.by_suggestion.entry(id.to_string()).or_default();
        for d in deadlines {
            let aid = d.assignment_id.to_string();
            let at = rows
                .iter()
                .position(|r| r.assignment_id == aid && r.kind == d.kind.as_str());
            let old = at.map(|i| (rows[i].due, rows[i].met));
            if old.is_some_and(|(due, met)| due == d.due && met == d.met) {
                continue;
            }
            match at {
                Some(i) => {
                    let r = &mut rows[i];
                    if r.due != d.due {
                        r.previous_due = Some(r.due);
                    }
                    r.due = d.due;
                    r.met = d.met;
                    r.agency_id = d.agency.to_string();
                    r.dirty = true;
                }
                None => rows.push(Stored {
                    assignment_id: aid.clone(),
                    kind: d.kind.as_str().to_string(),
                    agency_id: d.agency.to_string(),
                    due: d.due,
                    previous_due: None,
                    met: d.met,
                    dirty: true,
                }),
            }
            // The old date's alerts that have not gone out go (fired ones stay fired).
            let moved = old.map(|(due, _)| due).filter(|due| *due != d.due);
            if let Some(old_due) = moved {
                cancel_alerts(ops, &aid, d.kind, old_due, reminders);
            }
            if d.met {
                cancel_alerts(ops, &aid, d.kind, d.due, reminders);
            } else {
                let kinds = alerts(d.due, reminders);
                for ((key, at, payload), (alert, _)) in
                    timers_for(id, d, reminders).into_iter().zip(kinds)
                {
                    // A moved date's reminders already past are not sent late; its overdue
                    // flags are.
                    if moved.is_some() && at < now && matches!(alert, Alert::Before(_)) {
                        continue;
                    }
                    ops.schedule(&key, at, &payload);
                }
            }
        }
        // Deadlines no live assignment carries any more (superseded): met, their alerts gone.
        for r in rows.iter_mut() {
            if deadlines.iter().any(|d| {
                d.assignment_id.to_string() == r.assignment_id && d.kind.as_str() == r.kind
            }) {
                continue;
            }
            if !r.met {
                r.met = true;
                r.dirty = true;
            }
            if let Some(k) = DeadlineKind::parse(&r.kind) {
                cancel_alerts(ops, &r.assignment_id, k, r.due, reminders);
            }
        }
    }

    /// The unit rows to add and the deadline rows to write, once each; clears both marks.
    pub(super) fn take_changes(&mut self) -> (Vec<(String, String)>, Vec<DeadlineValues>) {
        let units = std::mem::take(&mut self.units).into_iter().collect();
        let mut changed = Vec::new();
        for (suggestion, rows) in &mut self.by_suggestion {
            for r in rows.iter_mut().filter(|r| r.dirty) {
                r.dirty = false;
                changed.push((
                    suggestion.clone(),
                    r.assignment_id.clone(),
                    r.kind.clone(),
                    r.agency_id.clone(),
                    r.due,
                    r.previous_due,
                    r.met,
                ));
            }
        }
        (units, changed)
    }
}

/// The replica rows of a batch, in one statement each way.
pub(super) mod bulk {
    use super::DeadlineValues;
    use time::{Date, OffsetDateTime};

    pub mod sqlite {
        use super::{DeadlineValues, OffsetDateTime};
        use banli_domain::suggestion::Suggestion;

        /// Every fact row of these suggestions, replaced: a few statements for the whole batch
        /// (the rows go in as JSON: SQLite has no arrays).
        pub async fn save_fact_rows_many(
            c: &mut sqlx::SqliteConnection,
            suggestions: &[&Suggestion],
        ) -> Result<(), sqlx::Error> {
            crate::store::save_facts_many_sqlite(c, suggestions).await
        }

        pub async fn load_deadlines(
            c: &mut sqlx::SqliteConnection,
            ids: &[String],
        ) -> Result<Vec<DeadlineValues>, sqlx::Error> {
            sqlx::query_as(
                "SELECT d.suggestion_id, d.assignment_id, d.kind, d.agency_id, d.due, d.previous_due, d.met \
                 FROM json_each($1) x JOIN followup_deadlines d ON d.suggestion_id = x.value",
            )
            .bind(serde_json::to_string(ids).unwrap_or_default())
            .fetch_all(&mut *c)
            .await
        }

        pub async fn insert_units(
            c: &mut sqlx::SqliteConnection,
            units: &[(String, String)],
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO followup_units (agency_id, suggestion_id) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1) WHERE true \
                 ON CONFLICT (agency_id, suggestion_id) DO NOTHING",
            )
            .bind(serde_json::to_string(units).unwrap_or_default())
            .execute(&mut *c)
            .await
            .map(|_| ())
        }

        pub async fn upsert_deadlines(
            c: &mut sqlx::SqliteConnection,
            rows: &[DeadlineValues],
        ) -> Result<(), sqlx::Error> {
            // Dates serialize as `YYYY-MM-DD`, as sqlx binds them.
            sqlx::query(
                "INSERT INTO followup_deadlines (suggestion_id, assignment_id, kind, agency_id, due, previous_due, met) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                 json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]') FROM json_each($1) WHERE true \
                 ON CONFLICT (assignment_id, kind) DO UPDATE SET due = excluded.due, previous_due = excluded.previous_due, \
                 met = excluded.met, agency_id = excluded.agency_id",
            )
            .bind(serde_json::to_string(rows).unwrap_or_default())
            .execute(&mut *c)
            .await
            .map(|_| ())
        }

        pub async fn load_many(
            c: &mut sqlx::SqliteConnection,
            ids: &[String],
        ) -> Result<Vec<(String, String)>, sqlx::Error> {
            // SQLite has no arrays: the ids go in as JSON.
            sqlx::query_as(
                "SELECT f.suggestion_id, f.replica FROM json_each($1) x JOIN followup_cases f ON f.suggestion_id = x.value",
            )
            .bind(serde_json::to_string(ids).unwrap_or_default())
            .fetch_all(&mut *c)
            .await
        }

        pub async fn save_cases(
            c: &mut sqlx::SqliteConnection,
            cases: &[(&str, u64, &str, bool)],
            now: OffsetDateTime,
        ) -> Result<(), sqlx::Error> {
            // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
            // `confidential` is written with the first row only: it is fixed at submission.
            sqlx::query(
                "INSERT INTO followup_cases (suggestion_id, replica_version, replica, updated_at, confidential) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), $2, json_extract(value, '$[3]') FROM json_each($1) WHERE true \
                 ON CONFLICT (suggestion_id) DO UPDATE SET replica_version = excluded.replica_version, replica = excluded.replica, updated_at = excluded.updated_at",
            )
            .bind(serde_json::to_string(cases).unwrap_or_default())
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }
    }

    pub mod postgres {
        use super::{Date, DeadlineValues, OffsetDateTime};
        use banli_domain::suggestion::Suggestion;

        /// Every fact row of these suggestions, replaced: a few statements for the whole batch
        /// instead of about ten per suggestion.
        pub async fn save_fact_rows_many(
            c: &mut sqlx::PgConnection,
            suggestions: &[&Suggestion],
        ) -> Result<(), sqlx::Error> {
            crate::store::save_facts_many_postgres(c, suggestions).await
        }

        pub async fn load_deadlines(
            c: &mut sqlx::PgConnection,
            ids: &[String],
        ) -> Result<Vec<DeadlineValues>, sqlx::Error> {
            sqlx::query_as(
                "SELECT d.suggestion_id, d.assignment_id, d.kind, d.agency_id, d.due, d.previous_due, d.met \
                 FROM UNNEST($1::text[]) AS x(id) JOIN followup_deadlines d ON d.suggestion_id = x.id",
            )
            .bind(ids)
            .fetch_all(&mut *c)
            .await
        }

        pub async fn insert_units(
            c: &mut sqlx::PgConnection,
            units: &[(String, String)],
        ) -> Result<(), sqlx::Error> {
            let (agencies, suggestions): (Vec<&str>, Vec<&str>) =
                units.iter().map(|(a, s)| (a.as_str(), s.as_str())).unzip();
            sqlx::query(
                "INSERT INTO followup_units (agency_id, suggestion_id) SELECT * FROM UNNEST($1::text[], $2::text[]) \
                 ON CONFLICT (agency_id, suggestion_id) DO NOTHING",
            )
            .bind(&agencies)
            .bind(&suggestions)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }

        pub async fn upsert_deadlines(
            c: &mut sqlx::PgConnection,
            rows: &[DeadlineValues],
        ) -> Result<(), sqlx::Error> {
            let mut cols: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
            let mut dates: (Vec<Date>, Vec<Option<Date>>, Vec<bool>) = Default::default();
            for (s, a, k, g, due, previous, met) in rows {
                cols.0.push(s);
                cols.1.push(a);
                cols.2.push(k);
                cols.3.push(g);
                dates.0.push(*due);
                dates.1.push(*previous);
                dates.2.push(*met);
            }
            sqlx::query(
                "INSERT INTO followup_deadlines (suggestion_id, assignment_id, kind, agency_id, due, previous_due, met) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::date[], $7::bool[]) \
                 ON CONFLICT (assignment_id, kind) DO UPDATE SET due = excluded.due, previous_due = excluded.previous_due, \
                 met = excluded.met, agency_id = excluded.agency_id",
            )
            .bind(&cols.0)
            .bind(&cols.1)
            .bind(&cols.2)
            .bind(&cols.3)
            .bind(&dates.0)
            .bind(&dates.1)
            .bind(&dates.2)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }

        pub async fn load_many(
            c: &mut sqlx::PgConnection,
            ids: &[String],
        ) -> Result<Vec<(String, String)>, sqlx::Error> {
            sqlx::query_as(
                "SELECT f.suggestion_id, f.replica FROM UNNEST($1::text[]) AS x(id) JOIN followup_cases f ON f.suggestion_id = x.id",
            )
            .bind(ids)
            .fetch_all(&mut *c)
            .await
        }

        pub async fn save_cases(
            c: &mut sqlx::PgConnection,
            cases: &[(&str, u64, &str, bool)],
            now: OffsetDateTime,
        ) -> Result<(), sqlx::Error> {
            let ids: Vec<&str> = cases.iter().map(|c| c.0).collect();
            let versions: Vec<i64> = cases.iter().map(|c| c.1 as i64).collect();
            let replicas: Vec<&str> = cases.iter().map(|c| c.2).collect();
            let confidential: Vec<bool> = cases.iter().map(|c| c.3).collect();
            // `confidential` is written with the first row only: it is fixed at submission.
            sqlx::query(
                "INSERT INTO followup_cases (suggestion_id, replica_version, replica, updated_at, confidential) \
                 SELECT x.id, x.v, x.r, $4, x.c FROM UNNEST($1::text[], $2::bigint[], $3::text[], $5::boolean[]) AS x(id, v, r, c) \
                 ON CONFLICT (suggestion_id) DO UPDATE SET replica_version = excluded.replica_version, replica = excluded.replica, updated_at = excluded.updated_at",
            )
            .bind(&ids)
            .bind(&versions)
            .bind(&replicas)
            .bind(now)
            .bind(&confidential)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }
    }
}
