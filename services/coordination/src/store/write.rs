//! This service's own events as written: their envelopes and rows, and the per-backend
//! statements that append them with their outbox rows.

use super::*;

#[derive(Serialize)]
pub(super) struct WireOut<'a> {
    event_id: Uuid,
    schema_version: u32,
    event_type: &'a str,
    aggregate_type: &'static str,
    aggregate_id: String,
    aggregate_version: u64,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    actor: &'a Actor,
    payload: &'a CoordinationEvent,
    /// The W3C trace context of the command that wrote it, when traces are exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

/// Rows for appending own events: (version, event id, type, payload, actor, effects, status,
/// envelope, time).
pub(super) type EventRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    &'static str,
    String,
    OffsetDateTime,
);

pub(super) fn event_rows(
    id: SuggestionId,
    from_version: u64,
    events: &[NewOwnEvent],
    traceparent: Option<&str>,
) -> Result<Vec<EventRow>, StoreError> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let version = from_version + 1 + i as u64;
            let ty = e.event.event_type();
            let status = if e.effects.is_empty() {
                Status::Final
            } else {
                Status::Pending
            };
            let wire = WireOut {
                event_id: e.event_id,
                schema_version: SCHEMA_VERSION,
                event_type: &ty,
                aggregate_type: "coordination",
                aggregate_id: id.to_string(),
                aggregate_version: version,
                occurred_at: e.occurred_at,
                actor: &e.actor,
                payload: &e.event,
                traceparent,
            };
            let wire = json(&wire)?;
            Ok((
                version as i64,
                e.event_id.to_string(),
                ty,
                json(&e.event)?,
                json(&e.actor)?,
                json(&e.effects)?,
                status.as_str(),
                wire,
                e.occurred_at,
            ))
        })
        .collect()
}

macro_rules! backend {
    ($module:ident, $conn:ty, $inbox:ident) => {
        pub(super) mod $module {
            use super::*;

            /// Appends own events and their outbox rows, moving the case from `expected` on.
            pub async fn append_own(
                c: &mut $conn,
                id: &str,
                expected: u64,
                case: &str,
                rows: &[EventRow],
                refs: &[(Uuid, &'static str)],
                now: OffsetDateTime,
            ) -> Result<(), StoreError> {
                let new_version = expected + rows.len() as u64;
                let r = sqlx::query("UPDATE coordination_cases SET version = $1, state = $2, updated_at = $3 WHERE suggestion_id = $4 AND version = $5")
                    .bind(new_version as i64)
                    .bind(case)
                    .bind(now)
                    .bind(id)
                    .bind(expected as i64)
                    .execute(&mut *c)
                    .await?;
                if r.rows_affected() == 0 {
                    let actual: Option<(i64,)> = sqlx::query_as("SELECT version FROM coordination_cases WHERE suggestion_id = $1")
                        .bind(id)
                        .fetch_optional(&mut *c)
                        .await?;
                    return Err(match actual {
                        None => StoreError::NotFound(format!("suggestion {id}")),
                        Some((v,)) => StoreError::Conflict { expected, actual: v as u64 },
                    });
                }
                for (version, event_id, ty, payload, actor, effects, status, wire, at) in rows {
                    sqlx::query("INSERT INTO coordination_events (suggestion_id, version, event_id, event_type, payload, actor, effects, status, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                        .bind(id).bind(*version).bind(event_id).bind(ty).bind(payload).bind(actor).bind(effects).bind(*status).bind(*at)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query("INSERT INTO coordination_outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) VALUES ($1, $2, 'coordination', $3, $4, $5, $6)")
                        .bind(event_id).bind(ty).bind(id).bind(*version).bind(wire).bind(*at)
                        .execute(&mut *c)
                        .await?;
                }
                insert_refs(c, id, refs).await
            }

            pub async fn insert_refs(
                c: &mut $conn,
                id: &str,
                refs: &[(Uuid, &'static str)],
            ) -> Result<(), StoreError> {
                for (ref_id, kind) in refs {
                    sqlx::query("INSERT INTO coordination_refs (ref_id, kind, suggestion_id) VALUES ($1, $2, $3) ON CONFLICT (ref_id) DO NOTHING")
                        .bind(ref_id.to_string())
                        .bind(*kind)
                        .bind(id)
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            }

            /// The writes of one consumed event that stay its own: the command it settles, and
            /// the events (reply copies) it causes here.
            pub async fn apply_own(
                c: &mut $conn,
                ch: &ReplicaChange,
                rows: &[EventRow],
                now: OffsetDateTime,
            ) -> Result<(), StoreError> {
                if let Some((event_id, status, reason)) = &ch.settles {
                    sqlx::query("UPDATE coordination_events SET status = $1, status_reason = $2 WHERE event_id = $3 AND status = 'pending'")
                        .bind(status.as_str())
                        .bind(reason.as_deref())
                        .bind(event_id.to_string())
                        .execute(&mut *c)
                        .await?;
                }
                if !rows.is_empty() {
                    let refs: Vec<_> = ch.caused.iter().flat_map(|e| own_refs_of(&e.event)).collect();
                    let id = ch.suggestion_id.to_string();
                    append_own(c, &id, ch.case_version, &json(&ch.case)?, rows, &refs, now).await?;
                }
                Ok(())
            }
        }
    };
}

backend!(sqlite, sqlx::SqliteConnection, sqlite);
backend!(postgres, sqlx::PgConnection, postgres);
