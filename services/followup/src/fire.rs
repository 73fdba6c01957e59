//! Fires the alert timers: each alert is recorded with its timer's completion in one
//! transaction, so it goes out once across replicas and restarts.

use banli_db::Pool;
use banli_timers::{Claimed, TimerHandler};
use time::OffsetDateTime;

use crate::store::{AlertPayload, Store};

#[derive(Debug, Clone)]
pub struct AlertFirer {
    store: Store,
}

impl AlertFirer {
    pub fn new(store: Store) -> AlertFirer {
        AlertFirer { store }
    }
}

impl TimerHandler for AlertFirer {
    async fn fire(&self, owner: &str, timers: &[Claimed]) -> Result<Vec<bool>, String> {
        let (store, owner, timers) = (self.store.clone(), owner.to_owned(), timers.to_vec());
        self.store
            .db()
            .write(move |pool| async move {
                let now = OffsetDateTime::now_utc();
                let mut out = Vec::with_capacity(timers.len());
                for t in &timers {
                    // A notice's escalation timer.
                    if let Some(id) = serde_json::from_str::<serde_json::Value>(&t.payload)
                        .ok()
                        .and_then(|v| v.get("escalate")?.as_str()?.parse::<uuid::Uuid>().ok())
                    {
                        let id = banli_domain::ids::NoticeId(id);
                        let today = t.due_at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC)).date();
                        let fired = match &pool {
                            Pool::Sqlite(p) => {
                                let mut tx = p.begin().await?;
                                // Completed first: escalating cancels the notice's own timer.
                                let ok = banli_timers::sqlite::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                                let escalated = ok && crate::notices::escalate_on_sqlite(&mut tx, &store, id, today).await?;
                                if ok {
                                    tx.commit().await?;
                                }
                                escalated
                            }
                            Pool::Postgres(p) => {
                                let mut tx = p.begin().await?;
                                // Completed first: escalating cancels the notice's own timer.
                                let ok = banli_timers::postgres::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                                let escalated = ok && crate::notices::escalate_on_postgres(&mut tx, &store, id, today).await?;
                                if ok {
                                    tx.commit().await?;
                                }
                                escalated
                            }
                        };
                        if fired {
                            tracing::info!(notice = %id, "an unanswered supervision notice was escalated");
                            store.audit_written();
                            store.timers().scheduled();
                        }
                        out.push(fired);
                        continue;
                    }
                    // A stage plan's supervision round.
                    if let Ok(round) = serde_json::from_str::<crate::stages::RoundPayload>(&t.payload) {
                        let r = round.stage_round;
                        let today = t.due_at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC)).date();
                        let (fired, notice) = match &pool {
                            Pool::Sqlite(p) => {
                                let mut tx = p.begin().await?;
                                let notice = crate::stages::sqlite::fire_round(&mut tx, &store, &r, today).await?;
                                let ok = banli_timers::sqlite::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                                if ok {
                                    tx.commit().await?;
                                }
                                (ok, notice)
                            }
                            Pool::Postgres(p) => {
                                let mut tx = p.begin().await?;
                                let notice = crate::stages::postgres::fire_round(&mut tx, &store, &r, today).await?;
                                let ok = banli_timers::postgres::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                                if ok {
                                    tx.commit().await?;
                                }
                                (ok, notice)
                            }
                        };
                        if fired {
                            match &notice {
                                Some(n) => tracing::info!(agency = %r.agency_id, year = r.year, stage = r.stage, round = r.round, notice = %n.id, items = n.suggestions.len(), "stage supervision round: notice issued on the items short of the stage's targets"),
                                None => tracing::info!(agency = %r.agency_id, year = r.year, stage = r.stage, round = r.round, "stage supervision round: every item on target, no notice"),
                            }
                            if notice.is_some() {
                                store.audit_written();
                                store.timers().scheduled();
                            }
                        }
                        out.push(fired);
                        continue;
                    }
                    let payload: AlertPayload = match serde_json::from_str(&t.payload) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(timer = %t.key, error = %e, "a timer's payload cannot be read; it is completed without an alert");
                            out.push(false);
                            continue;
                        }
                    };
                    let fired = match &pool {
                        Pool::Sqlite(p) => {
                            let mut tx = p.begin().await?;
                            crate::store::sqlite::record_alert(&mut tx, &t.key, &payload, now).await?;
                            let ok = banli_timers::sqlite::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                            if ok {
                                tx.commit().await?;
                            }
                            ok
                        }
                        Pool::Postgres(p) => {
                            let mut tx = p.begin().await?;
                            crate::store::postgres::record_alert(&mut tx, &t.key, &payload, now).await?;
                            let ok = banli_timers::postgres::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                            if ok {
                                tx.commit().await?;
                            }
                            ok
                        }
                    };
                    if fired {
                        tracing::info!(suggestion = %payload.suggestion_id, agency = %payload.agency_id, deadline = %payload.kind, due = %payload.due, level = %payload.level, alert = %payload.alert, "follow-up alert");
                    }
                    out.push(fired);
                }
                Ok::<_, crate::store::StoreError>(out)
            })
            .await
            .map_err(|e| e.to_string())
    }
}
