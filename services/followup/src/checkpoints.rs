//! The audit log's signed checkpoints as events: each new one (at most one per interval) is
//! published as `audit.checkpoint` through this service's outbox, and the coordination service
//! puts it into every agency's feed and webhooks. Each agency's system thereby keeps the
//! checkpoints it saw — witnesses outside the platform's database that a log cut back or rewritten
//! later contradicts (`banli audit verify --trusted-checkpoint`).
//!
//! The events of one log are one aggregate (`audit_log`, id = the log's origin) with contiguous
//! versions, counted in `followup_checkpoint_events` in the transaction that writes the outbox
//! row; a checkpoint no larger than the last one published is not published again.

use std::time::Duration;

use banli_auditlog::AuditLog;
use banli_auditlog::log::Signed;
use banli_db::Pool;
use banli_domain::audit_log::AuditLogEvent;
use base64::Engine;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// The event type (`AuditLogEvent::Checkpoint`'s; a test checks they agree).
pub const EVENT_TYPE: &str = "audit.checkpoint";
/// The aggregate type: one aggregate per log.
pub use banli_domain::audit_log::AGGREGATE_TYPE;

/// The event's envelope: the signed note is exactly what `GET /v1/audit/checkpoint` serves, so
/// an agency's system can keep `payload.data.note` as a file for `banli audit verify`.
fn envelope(origin: &str, s: &Signed, event_id: Uuid, version: u64) -> String {
    let at = s
        .signed_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut e = json!({
        "event_id": event_id,
        "schema_version": banli_domain::audit_log::SCHEMA_VERSION,
        "event_type": EVENT_TYPE,
        "aggregate_type": AGGREGATE_TYPE,
        "aggregate_id": origin,
        "aggregate_version": version,
        "occurred_at": at,
        // No person acts: the log attests.
        "actor": {"role": "auditor", "agency": null, "deputy": null},
        "payload": AuditLogEvent::Checkpoint {
            origin: origin.to_owned(),
            size: s.size,
            root_hash: base64::engine::general_purpose::STANDARD.encode(s.root),
            signed_at: at.clone(),
            note: s.note.clone(),
        },
    });
    if let Some(tp) = banli_eventlog::trace::traceparent() {
        e["traceparent"] = serde_json::Value::String(tp);
    }
    e.to_string()
}

macro_rules! publish_in {
    ($p:expr, $origin:expr, $s:expr) => {{
        let mut tx = $p.begin().await?;
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT version, size FROM followup_checkpoint_events WHERE origin = $1",
        )
        .bind($origin)
        .fetch_optional(&mut *tx)
        .await?;
        if last.is_some_and(|(_, size)| size >= $s.size as i64) {
            return Ok::<_, StoreError>(None);
        }
        let version = last.map_or(1, |(v, _)| v + 1);
        let event_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO followup_outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event_id.to_string())
        .bind(EVENT_TYPE)
        .bind(AGGREGATE_TYPE)
        .bind($origin)
        .bind(version)
        .bind(envelope($origin, $s, event_id, version as u64))
        .bind(OffsetDateTime::now_utc())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO followup_checkpoint_events (origin, version, size) VALUES ($1, $2, $3) \
             ON CONFLICT (origin) DO UPDATE SET version = excluded.version, size = excluded.size",
        )
        .bind($origin)
        .bind(version)
        .bind($s.size as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(Some(version as u64))
    }};
}

impl Store {
    /// Writes the `audit.checkpoint` event of `signed` into the outbox unless a checkpoint at
    /// least as large was published; the event's version if it was written.
    pub async fn publish_checkpoint(
        &self,
        origin: &str,
        signed: &Signed,
    ) -> Result<Option<u64>, StoreError> {
        let (origin, signed) = (origin.to_owned(), signed.clone());
        let written = self
            .db()
            .write(move |pool| async move {
                match &pool {
                    Pool::Sqlite(p) => publish_in!(p, &origin, &signed),
                    Pool::Postgres(p) => publish_in!(p, &origin, &signed),
                }
            })
            .await?;
        if written.is_some() {
            self.outbox().written();
        }
        Ok(written)
    }
}

/// Publishes the log's checkpoints until `stop` resolves: the latest at start (if not yet
/// published), then each new one, at most one per `every`.
pub async fn run(
    store: Store,
    log: AuditLog,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut signed = log.subscribe();
    loop {
        // The empty log's checkpoint witnesses nothing.
        let latest = signed.borrow_and_update().clone().filter(|s| s.size > 0);
        if let Some(s) = latest {
            match store.publish_checkpoint(log.origin(), &s).await {
                Ok(Some(version)) => {
                    tracing::debug!(size = s.size, version, "audit checkpoint published");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "publishing the audit checkpoint failed; retrying in 1 s");
                    tokio::select! {
                        () = &mut stop => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            }
        }
        // At most one per interval; then nothing until the log signs again.
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
        tokio::select! {
            () = &mut stop => return,
            r = signed.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_event_type_is_the_one_the_domain_derives() {
        assert_eq!(
            banli_domain::audit_log::AuditLogEvent::event_types(),
            [super::EVENT_TYPE]
        );
    }
}
