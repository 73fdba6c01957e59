//! The per-backend writes of a consumed batch.

use super::*;

/// The condition that leaves out the rows of `table` (which has a `suggestion_id`) that belong
/// to confidential suggestions, when `hide`; nothing otherwise.
pub(super) fn not_confidential(hide: bool, table: &str) -> String {
    if hide {
        format!(
            " AND NOT EXISTS (SELECT 1 FROM followup_cases cc WHERE cc.suggestion_id = {table}.suggestion_id AND cc.confidential)"
        )
    } else {
        String::new()
    }
}

macro_rules! backend {
    ($module:ident, $conn:ty, $timers:ident, $inbox:ident) => {
        /// The writes within a caller's transaction.
        pub mod $module {
            use super::*;

            pub async fn load(c: &mut $conn, id: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
                sqlx::query_as("SELECT replica_version, replica FROM followup_cases WHERE suggestion_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await
            }

            /// The stored replicas (id, JSON) of these suggestions, in one query.
            pub async fn load_many(c: &mut $conn, ids: &[String]) -> Result<Vec<(String, String)>, sqlx::Error> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                super::bulk::$module::load_many(c, ids).await
            }

            /// Replaces the fact rows of these suggestions.
            pub async fn save_fact_rows_many(c: &mut $conn, suggestions: &[&Suggestion]) -> Result<(), sqlx::Error> {
                if suggestions.is_empty() {
                    return Ok(());
                }
                super::bulk::$module::save_fact_rows_many(c, suggestions).await
            }

            /// Stores replica rows (id, version, JSON, confidential), in one statement.
            pub async fn save_cases(c: &mut $conn, cases: &[(&str, u64, &str, bool)], now: OffsetDateTime) -> Result<(), sqlx::Error> {
                if cases.is_empty() {
                    return Ok(());
                }
                super::bulk::$module::save_cases(c, cases, now).await
            }

            /// Stores the replica and its deadlines; schedules the alerts of open deadlines
            /// (moving them when a due date moved) and cancels those of met or gone ones.
            #[allow(clippy::too_many_arguments)]
            pub async fn save(
                c: &mut $conn,
                timers: &Timers,
                id: &str,
                version: u64,
                replica: &str,
                units: &[String],
                deadlines: &[TrackedDeadline],
                changed: Changed,
                reminders: &Reminders,
                now: OffsetDateTime,
            ) -> Result<(), sqlx::Error> {
                let mut ops = Ops::default();
                // A whole replica comes in as its JSON: it says itself whether it is confidential.
                let confidential = serde_json::from_str::<serde_json::Value>(replica)
                    .ok()
                    .and_then(|r| r["details"]["confidential"].as_bool())
                    .unwrap_or(false);
                save_cases(c, &[(id, version, replica, confidential)], now).await?;
                let mut rows = load_deadlines(c, &[id.to_string()]).await?;
                rows.track(&mut ops, id, units, deadlines, changed, reminders, now);
                write_deadlines(c, &mut rows).await?;
                banli_timers::$timers::flush(timers, c, ops).await
            }

            /// The deadline rows of these suggestions, for a batch to move in memory.
            pub async fn load_deadlines(c: &mut $conn, ids: &[String]) -> Result<DeadlineRows, sqlx::Error> {
                let rows = if ids.is_empty() {
                    Vec::new()
                } else {
                    super::bulk::$module::load_deadlines(c, ids).await?
                };
                Ok(DeadlineRows::read(ids, rows))
            }

            /// Writes what a batch changed of its deadline and unit rows: two statements at most.
            pub async fn write_deadlines(c: &mut $conn, rows: &mut DeadlineRows) -> Result<(), sqlx::Error> {
                let (units, changed) = rows.take_changes();
                if !units.is_empty() {
                    super::bulk::$module::insert_units(c, &units).await?;
                }
                if !changed.is_empty() {
                    super::bulk::$module::upsert_deadlines(c, &changed).await?;
                }
                Ok(())
            }

            /// Replaces a suggestion's rows in the metrics tables with `s`'s facts, and updates
            /// the per-day counts with what changed from `old` (the suggestion as stored
            /// before; `None` when it is new).
            pub async fn save_facts(c: &mut $conn, old: Option<&Suggestion>, s: &Suggestion) -> Result<(), sqlx::Error> {
                let mut days = DaySums::new();
                let rows = fact_changes(old, s, &mut days);
                add_days(c, &days).await?;
                if rows {
                    save_fact_rows_many(c, &[s]).await?;
                }
                Ok(())
            }

            /// The per-day count changes of a batch, summed, in one statement.
            pub async fn add_days(c: &mut $conn, days: &DaySums) -> Result<(), sqlx::Error> {
                if days.is_empty() {
                    return Ok(());
                }
                super::add_days::$module(c, days).await
            }

            /// Keeps a timer per commitment: due the day after its target date while it is open,
            /// cancelled once it is converted (a timer that fired stays fired).
            pub async fn sync_commitments(c: &mut $conn, timers: &Timers, s: &Suggestion) -> Result<(), sqlx::Error> {
                let mut ops = Ops::default();
                super::sync_commitments_into(&mut ops, s);
                banli_timers::$timers::flush(timers, c, ops).await
            }

            /// Keeps a reminder per open commitment for the progress word its owner next owes the
            /// deputy: moved when progress is reported or the deputy contacted, gone when the
            /// commitment is converted.
            pub async fn sync_progress(
                c: &mut $conn,
                timers: &Timers,
                before: Option<&Suggestion>,
                s: &Suggestion,
                reminders: &Reminders,
            ) -> Result<(), sqlx::Error> {
                let mut ops = Ops::default();
                super::sync_progress_into(&mut ops, before, s, reminders);
                banli_timers::$timers::flush(timers, c, ops).await
            }

            pub async fn record_alert(c: &mut $conn, key: &str, p: &AlertPayload, at: OffsetDateTime) -> Result<(), sqlx::Error> {
                sqlx::query("INSERT INTO followup_alerts (timer_key, suggestion_id, assignment_id, agency_id, kind, due, alert, level, fired_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (timer_key) DO NOTHING")
                    .bind(key).bind(&p.suggestion_id).bind(&p.assignment_id).bind(&p.agency_id).bind(&p.kind)
                    .bind(p.due).bind(&p.alert).bind(&p.level).bind(at)
                    .execute(&mut *c).await?;
                Ok(())
            }
        }
    };
}

backend!(sqlite, sqlx::SqliteConnection, sqlite, sqlite);
backend!(postgres, sqlx::PgConnection, postgres, postgres);
