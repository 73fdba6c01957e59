//! Appends the audit records the follow-up service commits (notices, acknowledgements,
//! responses, escalations) to the audit log, in order. A crash between appending and marking
//! appends them again, and the log skips a source id it holds already.

use std::time::Duration;

use banli_audit::Record;
use banli_auditlog::AuditLog;
use serde_json::Value;

use crate::store::Store;

fn record_of(json: &str) -> Option<Record> {
    let v: Value = serde_json::from_str(json).ok()?;
    // Notice bodies and responses are free text: committed to, kept beside the leaf, erasable.
    let mut data = v["data"].clone();
    let personal = banli_audit::split_personal(&mut data);
    Some(Record {
        record_type: v["record_type"].as_str()?.to_owned(),
        source_id: v["source_id"].as_str()?.to_owned(),
        subject: v["subject"].as_str().map(str::to_owned),
        occurred_at: v["occurred_at"].as_str().unwrap_or_default().to_owned(),
        actor: v["actor"].clone(),
        data,
        personal,
    })
}

/// Feeds the log until `stop` resolves.
pub async fn run(store: Store, log: AuditLog, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut written = store.audit_waiter();
    loop {
        let pause = match store.pending_audit(256).await {
            Ok(rows) if !rows.is_empty() => {
                let full = rows.len() == 256;
                let (seqs, records): (Vec<i64>, Vec<Option<Record>>) =
                    rows.into_iter().map(|(s, r)| (s, record_of(&r))).unzip();
                if records.iter().any(Option::is_none) {
                    tracing::error!(
                        "an audit record of the follow-up service cannot be read; it stays in followup_audit_outbox"
                    );
                }
                let records: Vec<Record> = records.into_iter().flatten().collect();
                match log.append(records).await {
                    Ok(_) => match store.mark_audited(seqs).await {
                        Ok(()) if full => Duration::ZERO,
                        Ok(()) => Duration::from_secs(30),
                        Err(e) => {
                            tracing::warn!(error = %e, "marking audit records failed; they will be appended again and skipped");
                            Duration::from_secs(1)
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "appending to the audit log failed; retrying");
                        Duration::from_secs(1)
                    }
                }
            }
            // Nothing waits: the next notice's commit wakes this.
            Ok(_) => Duration::from_secs(30),
            Err(e) => {
                tracing::warn!(error = %e, "reading the follow-up audit records failed; retrying");
                Duration::from_secs(1)
            }
        };
        if pause.is_zero() {
            continue;
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(pause) => {}
            () = written.wait() => {}
        }
    }
}
