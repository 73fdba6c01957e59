//! The webhook commands of the application layer, shared by REST and gRPC.

use std::sync::Arc;

use banli_api::{AppError, ErrorCode, Principal};
use banli_domain::Role;
use banli_domain::ids::AgencyId;
use uuid::Uuid;

use super::store::{DeliveryRow, EndpointRow};
use super::*;
use crate::app::App;
use crate::feed::Cursor;

/// Endpoints per agency.
const MAX_ENDPOINTS: usize = 20;

/// The least time between two replays of one endpoint (milliseconds).
pub const REPLAY_INTERVAL_MS: i64 = 60_000;

fn view(row: &EndpointRow, secret: Option<String>) -> Result<WebhookView, AppError> {
    let agency = AgencyId(
        row.agency_id
            .parse()
            .map_err(|_| AppError::internal(&"a webhook's agency id"))?,
    );
    Ok(WebhookView {
        id: row.id.clone(),
        agency_id: row.agency_id.clone(),
        url: row.url.clone(),
        event_types: row.types(),
        description: row.description.clone(),
        state: row.state.clone(),
        disabled_reason: row.disabled_reason.clone(),
        cursor: Cursor {
            agency,
            seq: row.cursor,
        }
        .encode(),
        failures: row.failures.max(0) as u32,
        next_attempt_at: (row.failures > 0).then(|| rfc3339(row.next_attempt_at)),
        version: row.version.max(0) as u64,
        secret,
    })
}

fn delivery_view(d: DeliveryRow, agency: AgencyId) -> DeliveryView {
    let status = d.status.and_then(|s| u16::try_from(s).ok());
    // Attempts logged before outcomes were coarse hold free text: shown as `failed`, never
    // the text.
    let outcome = match d.error.as_deref() {
        None => "delivered",
        Some(
            c @ ("http_status" | "timeout" | "refused" | "tls_error" | "not_allowed" | "no_secret"),
        ) => c,
        Some(_) => "failed",
    };
    DeliveryView {
        ok: d.error.is_none(),
        cursor: Cursor { agency, seq: d.seq }.encode(),
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        attempt: d.attempt.max(0) as u32,
        status,
        outcome: outcome.to_owned(),
        error: d
            .error
            .map(|c| super::deliver::Outcome::describe(&c, status)),
        duration_ms: d.duration_ms.max(0) as u64,
        at: rfc3339(d.at),
    }
}

fn check_types(types: &[String]) -> Result<(), AppError> {
    if types.len() > 50 {
        return Err(AppError::invalid("at most 50 event types per endpoint"));
    }
    for t in types {
        let ok = t.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && t.len() <= 100
                && t.bytes()
                    .all(|c| c.is_ascii_lowercase() || c == b'_' || c == b'.')
        });
        if !ok {
            return Err(AppError::invalid(format!(
                "`{t}` is not an event type (e.g. `suggestion.replied`)"
            )));
        }
    }
    Ok(())
}

fn stale(row: &EndpointRow, expected: u64) -> AppError {
    AppError::new(
        ErrorCode::StaleVersion,
        format!(
            "webhook {} is at version {}, not {expected}; read it again",
            row.id, row.version
        ),
    )
}

impl App {
    /// Runs a webhook command through the idempotency store (REST and gRPC). The stored
    /// response, which a replay returns, never holds a secret: only the first answer shows it.
    pub async fn idempotent_webhook<F, Fut>(
        &self,
        p: &Principal,
        key: Option<&str>,
        request_hash: &str,
        status: u16,
        run: F,
    ) -> Result<(u16, WebhookView), AppError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<WebhookView, AppError>>,
    {
        let fresh = std::sync::Mutex::new(None);
        let (status, stored) = self
            .idempotent(p, key, request_hash, || async {
                let v = run().await?;
                let mut kept = v.clone();
                kept.secret = None;
                let json = serde_json::to_string(&kept).map_err(|e| AppError::internal(&e))?;
                if let Ok(mut f) = fresh.lock() {
                    *f = Some(v);
                }
                Ok((status, json))
            })
            .await?;
        match fresh.into_inner().ok().flatten() {
            Some(v) => Ok((status, v)),
            None => Ok((
                status,
                serde_json::from_str(&stored).map_err(|e| AppError::internal(&e))?,
            )),
        }
    }

    /// Sets where webhook endpoints may point (once; later calls are ignored). Unset: public
    /// addresses only, over https.
    pub fn set_webhook_egress(&self, egress: super::egress::Egress) {
        let _ = self.webhook_egress_cell().set(egress);
    }

    /// Checks an endpoint URL against the egress policy: a 422 that names the address class
    /// and the setting that allows it.
    async fn check_webhook_url(&self, url: &str) -> Result<(), AppError> {
        let egress = self
            .webhook_egress_cell()
            .get()
            .cloned()
            .unwrap_or_default();
        egress.check_url(url).await.map_err(AppError::invalid)?;
        Ok(())
    }

    /// Sets the key that seals webhook secrets (once; later calls are ignored).
    pub fn set_webhook_key(&self, key: Arc<SecretKey>) {
        let _ = self.webhook_key_cell().set(key);
    }

    fn webhook_key(&self) -> Result<&Arc<SecretKey>, AppError> {
        self.webhook_key_cell().get().ok_or_else(|| {
            AppError::new(
                ErrorCode::Unavailable,
                "webhooks are not set up on this server (no webhook key); ask its operator",
            )
        })
    }

    /// The agency a manager acts for: an agency_admin key, its own agency.
    fn webhook_manager(&self, p: &Principal) -> Result<AgencyId, AppError> {
        match (p.role, p.agency) {
            (Role::AgencyAdmin, Some(a)) => Ok(a),
            _ => Err(AppError::forbidden(
                "webhooks are managed by the agency's own office: use an agency_admin key",
            )),
        }
    }

    /// An endpoint the caller may read (its agency's; the office and auditors any).
    async fn readable_webhook(&self, p: &Principal, id: Uuid) -> Result<EndpointRow, AppError> {
        let not_found = || AppError::not_found(format!("webhook {id} not found"));
        let row = self
            .store()
            .webhook(&id.to_string())
            .await?
            .ok_or_else(not_found)?;
        let mine =
            p.agency.is_some_and(|a| a.to_string() == row.agency_id) && p.role.is_agency_role();
        if mine || matches!(p.role, Role::AssigningOffice | Role::Auditor) {
            Ok(row)
        } else {
            Err(not_found())
        }
    }

    /// An endpoint the caller manages.
    async fn managed_webhook(&self, p: &Principal, id: Uuid) -> Result<EndpointRow, AppError> {
        let agency = self.webhook_manager(p)?;
        let row = self.readable_webhook(p, id).await?;
        if row.agency_id != agency.to_string() {
            return Err(AppError::not_found(format!("webhook {id} not found")));
        }
        Ok(row)
    }

    pub async fn create_webhook(
        &self,
        p: &Principal,
        r: CreateWebhook,
    ) -> Result<WebhookView, AppError> {
        let agency = self.webhook_manager(p)?;
        let key = self.webhook_key()?.clone();
        check_types(&r.event_types)?;
        if r.description.chars().count() > 500 {
            return Err(AppError::invalid("a description is at most 500 characters"));
        }
        self.check_webhook_url(&r.url).await?;
        let existing = self.store().webhooks(Some(&agency.to_string())).await?;
        if existing.len() >= MAX_ENDPOINTS {
            return Err(AppError::new(
                ErrorCode::LimitReached,
                format!(
                    "an agency has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
                ),
            ));
        }
        let cursor = match r.after.as_deref().unwrap_or("now") {
            "start" => 0,
            other => self.feed_cursor(agency, Some(other)).await?.seq,
        };
        let id = Uuid::now_v7().to_string();
        let secret = new_secret().map_err(|e| AppError::internal(&e))?;
        let sealed = key
            .seal(secret.as_bytes(), &id)
            .map_err(|e| AppError::internal(&e))?;
        let now = now_ms();
        let row = EndpointRow {
            id,
            agency_id: agency.to_string(),
            url: r.url,
            event_types: serde_json::to_string(&r.event_types).unwrap_or_else(|_| "[]".into()),
            description: r.description,
            state: "active".into(),
            disabled_reason: None,
            cursor,
            failures: 0,
            failing_since: None,
            next_attempt_at: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.store()
            .insert_webhook(row.clone(), Uuid::now_v7().to_string(), sealed)
            .await?;
        self.store().feed_written();
        tracing::info!(webhook = %row.id, agency = %row.agency_id, url = %row.url, "webhook endpoint created");
        view(&row, Some(secret))
    }

    pub async fn list_webhooks(
        &self,
        p: &Principal,
        agency_id: Option<Uuid>,
    ) -> Result<Vec<WebhookView>, AppError> {
        let agency = match (p.role, p.agency) {
            (Role::AssigningOffice | Role::Auditor, _) => agency_id.map(|a| a.to_string()),
            (r, Some(a)) if r.is_agency_role() => {
                if agency_id.is_some_and(|x| x != a.0) {
                    return Err(AppError::forbidden(
                        "an agency key lists its own webhooks only; leave agency_id out",
                    ));
                }
                Some(a.to_string())
            }
            _ => {
                return Err(AppError::forbidden(
                    "webhooks belong to agencies: use an agency key",
                ));
            }
        };
        self.store()
            .webhooks(agency.as_deref())
            .await?
            .iter()
            .map(|r| view(r, None))
            .collect()
    }

    pub async fn get_webhook(&self, p: &Principal, id: Uuid) -> Result<WebhookView, AppError> {
        view(&self.readable_webhook(p, id).await?, None)
    }

    pub async fn update_webhook(
        &self,
        p: &Principal,
        id: Uuid,
        expected: Option<u64>,
        u: UpdateWebhook,
    ) -> Result<WebhookView, AppError> {
        let old = self.managed_webhook(p, id).await?;
        if let Some(v) = expected
            && v as i64 != old.version
        {
            return Err(stale(&old, v));
        }
        let mut row = old.clone();
        if let Some(url) = u.url {
            self.check_webhook_url(&url).await?;
            row.url = url;
        }
        if let Some(types) = u.event_types {
            check_types(&types)?;
            row.event_types = serde_json::to_string(&types).unwrap_or_else(|_| "[]".into());
        }
        if let Some(d) = u.description {
            if d.chars().count() > 500 {
                return Err(AppError::invalid("a description is at most 500 characters"));
            }
            row.description = d;
        }
        match u.state.as_deref() {
            None => {}
            Some("active") => {
                row.state = "active".into();
                row.disabled_reason = None;
                row.failures = 0;
                row.failing_since = None;
                row.next_attempt_at = 0;
            }
            Some("disabled") => {
                row.state = "disabled".into();
                row.disabled_reason = Some("paused by the agency".into());
            }
            Some(other) => {
                return Err(AppError::invalid(format!(
                    "state `{other}`: give `active` or `disabled`"
                )));
            }
        }
        row.updated_at = now_ms();
        if !self
            .store()
            .update_webhook(row.clone(), old.version)
            .await?
        {
            let now = self
                .store()
                .webhook(&old.id)
                .await?
                .ok_or_else(|| AppError::not_found(format!("webhook {id} not found")))?;
            return Err(stale(&now, old.version.max(0) as u64));
        }
        self.store().feed_written();
        row.version = old.version + 1;
        view(&row, None)
    }

    pub async fn delete_webhook(&self, p: &Principal, id: Uuid) -> Result<(), AppError> {
        let row = self.managed_webhook(p, id).await?;
        self.store().delete_webhook(&row.id).await?;
        tracing::info!(webhook = %row.id, agency = %row.agency_id, "webhook endpoint deleted");
        Ok(())
    }

    /// A new secret, shown once; the old one keeps signing for the overlap.
    pub async fn rotate_webhook_secret(
        &self,
        p: &Principal,
        id: Uuid,
        expected: Option<u64>,
        r: RotateSecret,
    ) -> Result<WebhookView, AppError> {
        let row = self.managed_webhook(p, id).await?;
        let key = self.webhook_key()?.clone();
        if let Some(v) = expected
            && v as i64 != row.version
        {
            return Err(stale(&row, v));
        }
        let hours = r.overlap_hours.unwrap_or(24);
        if hours > 168 {
            return Err(AppError::invalid(format!(
                "overlap_hours {hours}: at most 168 (a week)"
            )));
        }
        let secret = new_secret().map_err(|e| AppError::internal(&e))?;
        let sealed = key
            .seal(secret.as_bytes(), &row.id)
            .map_err(|e| AppError::internal(&e))?;
        let now = now_ms();
        if !self
            .store()
            .rotate_webhook_secret(
                &row.id,
                row.version,
                Uuid::now_v7().to_string(),
                sealed,
                now,
                now + i64::from(hours) * 3_600_000,
            )
            .await?
        {
            return Err(stale(&row, row.version.max(0) as u64));
        }
        tracing::info!(webhook = %row.id, overlap_hours = hours, "webhook secret rotated");
        let mut out = view(&row, Some(secret))?;
        out.version += 1;
        Ok(out)
    }

    /// Delivers again everything after `after` (a cursor of the agency's feed, or `start`).
    pub async fn replay_webhook(
        &self,
        p: &Principal,
        id: Uuid,
        expected: Option<u64>,
        r: ReplayWebhook,
    ) -> Result<WebhookView, AppError> {
        let old = self.managed_webhook(p, id).await?;
        if let Some(v) = expected
            && v as i64 != old.version
        {
            return Err(stale(&old, v));
        }
        let agency = AgencyId(
            old.agency_id
                .parse()
                .map_err(|_| AppError::internal(&"a webhook's agency id"))?,
        );
        let seq = match r.after.as_str() {
            "start" => 0,
            "" => {
                return Err(AppError::malformed(
                    "`after` is required: a cursor of the agency's feed, or `start`",
                ));
            }
            c => Cursor::parse(c, agency)?.seq,
        };
        let now = now_ms();
        if let Some(at) = self
            .store()
            .take_webhook_replay(&old.id, now, now - REPLAY_INTERVAL_MS)
            .await?
        {
            let wait = (at + REPLAY_INTERVAL_MS - now).max(1000) / 1000;
            return Err(AppError::new(
                ErrorCode::RateLimited,
                format!(
                    "webhook {id} was replayed less than a minute ago; one replay per endpoint a \
                     minute: try again in {wait} s"
                ),
            ));
        }
        let mut row = old.clone();
        row.cursor = seq;
        row.failures = 0;
        row.failing_since = None;
        row.next_attempt_at = 0;
        row.updated_at = now_ms();
        if !self
            .store()
            .update_webhook(row.clone(), old.version)
            .await?
        {
            return Err(stale(&old, old.version.max(0) as u64));
        }
        self.store().feed_written();
        tracing::info!(webhook = %row.id, seq, "webhook replay from a cursor");
        row.version = old.version + 1;
        view(&row, None)
    }

    /// The endpoint's newest attempts.
    pub async fn webhook_deliveries(
        &self,
        p: &Principal,
        id: Uuid,
        limit: Option<u32>,
    ) -> Result<Vec<DeliveryView>, AppError> {
        let row = self.readable_webhook(p, id).await?;
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > 1000 {
            return Err(AppError::malformed(format!(
                "`limit` is {limit}; give 1 to 1000"
            )));
        }
        let agency = AgencyId(
            row.agency_id
                .parse()
                .map_err(|_| AppError::internal(&"a webhook's agency id"))?,
        );
        Ok(self
            .store()
            .webhook_deliveries(&row.id, limit)
            .await?
            .into_iter()
            .map(|d| delivery_view(d, agency))
            .collect())
    }
}
