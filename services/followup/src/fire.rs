//! Fires the alert timers: each alert is recorded with its timer's completion in one
//! transaction, so it goes out once across replicas and restarts.

use banli_db::Pool;
use banli_timers::{Claimed, TimerHandler};
use time::OffsetDateTime;

use banli_domain::Actor;
use banli_domain::ids::{AgencyId, SuggestionId};
use banli_domain::supervision::{Level, NoticeEvent, SupervisionNotice, Trigger};

use crate::store::{AlertPayload, Store};

#[derive(Debug, Clone)]
pub struct AlertFirer {
    store: Store,
    /// The assigning office: with it, a deadline's first overdue flag also raises a supervision
    /// notice (trigger `overdue`) to the unit, in the office's name.
    office: Option<AgencyId>,
    due_soon: Option<u32>,
    /// The profile's metric targets, checked at each stage's end.
    targets: Option<banli_domain::profile::MetricRules>,
}

impl AlertFirer {
    pub fn new(store: Store) -> AlertFirer {
        AlertFirer {
            store,
            office: None,
            due_soon: None,
            targets: None,
        }
    }

    /// Overdue deadlines raise notices from `office`.
    pub fn with_office(mut self, office: AgencyId) -> AlertFirer {
        self.office = Some(office);
        self
    }

    /// The reminder `days` before a due date also raises a notice (trigger `due_soon`), with an
    /// office set: the profile's last reminder before the day.
    pub fn with_due_soon(mut self, days: u32) -> AlertFirer {
        self.due_soon = Some(days);
        self
    }
}

impl AlertFirer {
    /// At each stage's end, rates under these targets raise a notice (trigger
    /// `metric_below_target`).
    pub fn with_targets(mut self, rules: banli_domain::profile::MetricRules) -> AlertFirer {
        self.targets = Some(rules);
        self
    }
}

/// The notice an alert raises: a deadline's first overdue flag, and the due-soon reminder.
fn alert_notice(
    office: AgencyId,
    due_soon: Option<u32>,
    p: &AlertPayload,
    today: time::Date,
) -> Option<SupervisionNotice> {
    let what = match p.kind.as_str() {
        "first_contact" => "首次联系代表",
        "co_opinion" => "会办意见",
        "reply" => "答复",
        "progress_notice" => "承诺事项进展通报",
        _ => return None,
    };
    let (level, trigger, body) = if p.alert.starts_with(crate::store::PROGRESS_OVERDUE) {
        (
            Level::Notice,
            Trigger::ProgressOverdue,
            format!(
                "{what}应于{}前向代表通报，宽限期已过仍未通报：请即向代表书面通报承诺事项进展（notify_deputy），内部记录不计为通报。",
                p.due
            ),
        )
    } else if p.kind == "progress_notice" {
        return None;
    } else if p.alert == "after-1" {
        (
            Level::Notice,
            Trigger::Overdue,
            format!(
                "{what}期限（{}）已过，请即办理并于7日内书面说明原因和办理进度。",
                p.due
            ),
        )
    } else if due_soon.is_some_and(|d| p.alert == format!("before-{d}")) {
        (
            Level::Reminder,
            Trigger::DueSoon,
            format!("{what}期限（{}）将至，请抓紧办理，按期完成。", p.due),
        )
    } else {
        return None;
    };
    let target = AgencyId(p.agency_id.parse().ok()?);
    let suggestion = SuggestionId(p.suggestion_id.parse().ok()?);
    Some(crate::notices::raised(
        office,
        target,
        vec![suggestion],
        level,
        trigger,
        body,
        today,
    ))
}

impl TimerHandler for AlertFirer {
    async fn fire(&self, owner: &str, timers: &[Claimed]) -> Result<Vec<bool>, String> {
        let (store, owner, timers, office, due_soon, targets) = (
            self.store.clone(),
            owner.to_owned(),
            timers.to_vec(),
            self.office,
            self.due_soon,
            self.targets.clone().unwrap_or_default(),
        );
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
                    // A commitment past its target date.
                    if let Ok(c) = serde_json::from_str::<crate::store::CommitmentPayload>(&t.payload) {
                        let r = c.commitment;
                        let today = t.due_at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC)).date();
                        let office_actor = Actor { position: None,
                            role: banli_domain::Role::AssigningOffice,
                            agency: office,
                            deputy: None,
                        };
                        macro_rules! commitment_on {
                            ($p:expr, $module:ident) => {{
                                let mut tx = $p.begin().await?;
                                let replica = crate::store::$module::load(&mut tx, &r.suggestion_id).await?;
                                let open = replica
                                    .and_then(|(_, json)| serde_json::from_str::<banli_domain::suggestion::Suggestion>(&json).ok())
                                    .and_then(|s| {
                                        let id = s.id;
                                        s.commitments.into_iter().find(|k| k.id.to_string() == r.commitment_id).map(|k| (id, k))
                                    })
                                    .filter(|(_, k)| k.state == banli_domain::suggestion::CommitmentState::Open);
                                let raised = match (office, open) {
                                    (Some(o), Some((sid, k))) => Some(crate::notices::raised(
                                        o,
                                        k.owner,
                                        vec![sid],
                                        Level::Notice,
                                        Trigger::Overdue,
                                        format!("承诺事项“{}”的目标日期（{}）已过，尚未兑现：请于7日内书面报告进展，兑现后附佐证材料办理转换。", k.measure, k.target_date),
                                        today,
                                    )),
                                    _ => None,
                                };
                                if let Some(n) = &raised {
                                    crate::notices::$module::save(&mut tx, &store, None, n, &[NoticeEvent::Issued(n.clone())], &office_actor, now).await?;
                                }
                                let ok = banli_timers::$module::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                                if ok {
                                    tx.commit().await?;
                                }
                                (ok, raised)
                            }};
                        }
                        let (fired, raised) = match &pool {
                            Pool::Sqlite(p) => commitment_on!(p, sqlite),
                            Pool::Postgres(p) => commitment_on!(p, postgres),
                        };
                        if fired && let Some(n) = &raised {
                            tracing::info!(notice = %n.id, commitment = %r.commitment_id, agency = %r.agency_id, "an overdue commitment raised a supervision notice");
                            store.audit_written();
                            store.timers().scheduled();
                        }
                        out.push(fired);
                        continue;
                    }
                    // A stage's end: the metric targets.
                    if let Ok(end) = serde_json::from_str::<crate::stages::StageEndPayload>(&t.payload) {
                        let today = t.due_at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC)).date();
                        macro_rules! end_on {
                            ($p:expr, $module:ident) => {{
                                let mut tx = $p.begin().await?;
                                let notice = crate::stages::$module::fire_stage_end(&mut tx, &store, &end, &targets, today).await?;
                                let ok = banli_timers::$module::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                                if ok {
                                    tx.commit().await?;
                                }
                                (ok, notice)
                            }};
                        }
                        let (fired, notice) = match &pool {
                            Pool::Sqlite(p) => end_on!(p, sqlite),
                            Pool::Postgres(p) => end_on!(p, postgres),
                        };
                        let r = &end.stage_end;
                        if fired {
                            match &notice {
                                Some(n) => {
                                    tracing::info!(agency = %r.agency_id, year = r.year, stage = r.stage, notice = %n.id, items = n.suggestions.len(), "stage end: rates under the profile's targets, notice issued");
                                    store.audit_written();
                                    store.timers().scheduled();
                                }
                                None => tracing::info!(agency = %r.agency_id, year = r.year, stage = r.stage, "stage end: no rate under its target"),
                            }
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
                    let today = t.due_at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC)).date();
                    let raised = office.and_then(|o| alert_notice(o, due_soon, &payload, today));
                    let office_actor = Actor { position: None,
                        role: banli_domain::Role::AssigningOffice,
                        agency: office,
                        deputy: None,
                    };
                    let fired = match &pool {
                        Pool::Sqlite(p) => {
                            let mut tx = p.begin().await?;
                            crate::store::sqlite::record_alert(&mut tx, &t.key, &payload, now).await?;
                            if let Some(n) = &raised {
                                crate::notices::sqlite::save(&mut tx, &store, None, n, &[NoticeEvent::Issued(n.clone())], &office_actor, now).await?;
                            }
                            let ok = banli_timers::sqlite::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                            if ok {
                                tx.commit().await?;
                            }
                            ok
                        }
                        Pool::Postgres(p) => {
                            let mut tx = p.begin().await?;
                            crate::store::postgres::record_alert(&mut tx, &t.key, &payload, now).await?;
                            if let Some(n) = &raised {
                                crate::notices::postgres::save(&mut tx, &store, None, n, &[NoticeEvent::Issued(n.clone())], &office_actor, now).await?;
                            }
                            let ok = banli_timers::postgres::complete(store.timers(), &mut tx, &t.key, &owner, now).await?;
                            if ok {
                                tx.commit().await?;
                            }
                            ok
                        }
                    };
                    if fired {
                        tracing::info!(suggestion = %payload.suggestion_id, agency = %payload.agency_id, deadline = %payload.kind, due = %payload.due, level = %payload.level, alert = %payload.alert, "follow-up alert");
                        if let Some(n) = &raised {
                            tracing::info!(notice = %n.id, agency = %payload.agency_id, deadline = %payload.kind, "a deadline raised a supervision notice");
                            store.audit_written();
                            store.timers().scheduled();
                        }
                    }
                    out.push(fired);
                }
                Ok::<_, crate::store::StoreError>(out)
            })
            .await
            .map_err(|e| e.to_string())
    }
}
