//! The application layer: one handler per use case, called by both REST and gRPC.
//!
//! A command finds its suggestion by the id it names (an assignment, opinion, reply or
//! disagreement), checks the caller is party to it, lets the domain decide against the replica
//! (with the effects of commands not yet confirmed), and appends the events with their outbox
//! rows in one transaction.

use std::future::Future;
use std::sync::Arc;

use banli_api::{AppError, Clock, ErrorCode, Principal};
use banli_calendar::Calendar;
use banli_domain::coordination::decide_coordination;
use banli_domain::ids::{AgencyId, SuggestionId};
use banli_domain::suggestion::{Suggestion, UnitRole};
use banli_domain::{DomainError, Role, RuleProfile, Rules};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::command::{CaseCommand, Once};
use crate::dto::{CaseView, TaskPage, TaskView};
use crate::store::{NewOwnEvent, Store, StoreError};

pub use banli_api::Authenticator;

/// The most tasks one page returns.
pub const MAX_PAGE: u32 = 200;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::not_found(format!("{what} not found")),
            StoreError::Conflict { expected, actual } => AppError::new(
                ErrorCode::Conflict,
                format!(
                    "changed by another request (version {actual}, this request was based on {expected}); read it again and retry"
                ),
            ),
            StoreError::Database(e) if banli_db::is_nul_in_text(&e) => AppError::nul_in_text(),
            other => AppError::internal(&other),
        }
    }
}

/// Everything a use case needs.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    profile: RuleProfile,
    calendar: Calendar,
    clock: Clock,
    auth: Authenticator,
    /// Seals the webhook secrets; set by the server at start.
    webhook_key: std::sync::OnceLock<Arc<crate::webhooks::SecretKey>>,
    /// Where webhook endpoints may point; unset: public addresses only.
    webhook_egress: std::sync::OnceLock<crate::webhooks::egress::Egress>,
    /// How many `Watch` streams a key and this process may hold.
    stream_limits: std::sync::OnceLock<Arc<crate::streams::StreamLimits>>,
    /// What this service waits on for ids another service creates, and for how long at most.
    gate: std::sync::OnceLock<(banli_eventlog::consistency::Gate, std::time::Duration)>,
    /// The document store (opinion letters, minutes), shared with the suggestions service.
    documents: std::sync::OnceLock<banli_documents::Documents>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Task list filters.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// The assigning office and auditors may name an agency; an agency sees its own.
    pub agency_id: Option<Uuid>,
    pub role: Option<UnitRole>,
    pub page_token: Option<String>,
    pub limit: Option<u32>,
}

impl App {
    pub fn new(
        store: Store,
        profile: RuleProfile,
        calendar: Calendar,
        clock: Clock,
        auth: Authenticator,
    ) -> App {
        App {
            inner: Arc::new(Inner {
                store,
                profile,
                calendar,
                clock,
                auth,
                webhook_key: std::sync::OnceLock::new(),
                webhook_egress: std::sync::OnceLock::new(),
                stream_limits: std::sync::OnceLock::new(),
                gate: std::sync::OnceLock::new(),
                documents: std::sync::OnceLock::new(),
            }),
        }
    }

    pub(crate) fn webhook_key_cell(&self) -> &std::sync::OnceLock<Arc<crate::webhooks::SecretKey>> {
        &self.inner.webhook_key
    }

    pub(crate) fn webhook_egress_cell(
        &self,
    ) -> &std::sync::OnceLock<crate::webhooks::egress::Egress> {
        &self.inner.webhook_egress
    }

    /// Sets the `Watch` stream limits (once, before serving; later calls are ignored).
    pub fn set_stream_limits(&self, per_key: usize, total: usize) {
        let _ = self
            .inner
            .stream_limits
            .set(Arc::new(crate::streams::StreamLimits::new(per_key, total)));
    }

    /// The `Watch` stream limits: 8 per key and 1,000 per process unless set.
    pub fn stream_limits(&self) -> Arc<crate::streams::StreamLimits> {
        self.inner
            .stream_limits
            .get_or_init(Default::default)
            .clone()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn today(&self) -> Date {
        self.inner.clock.today()
    }

    pub fn rules(&self) -> Rules<'_> {
        Rules {
            profile: &self.inner.profile,
            calendar: &self.inner.calendar,
        }
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        (self.inner.auth)(token.to_owned()).await
    }

    /// Runs `f` once per (caller, key, request): a replay returns the stored response.
    pub async fn idempotent<F, Fut>(
        &self,
        p: &Principal,
        key: Option<&str>,
        request_hash: &str,
        f: F,
    ) -> Result<(u16, String), AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(u16, String), AppError>>,
    {
        let s = self.store();
        banli_api::idempotent(s.db(), s.idempotency_keys(), p, key, request_hash, f).await
    }

    /// Gives the service its document store (once).
    pub fn set_documents(&self, documents: banli_documents::Documents) {
        let _ = self.inner.documents.set(documents);
    }

    /// The document store, when the service has one.
    pub fn documents(&self) -> Option<&banli_documents::Documents> {
        self.inner.documents.get()
    }

    /// Lets commands naming an id this service has not seen yet wait for it (see
    /// [`App::await_recent`]); set by the server at start.
    pub fn set_gate(&self, gate: banli_eventlog::consistency::Gate, wait: std::time::Duration) {
        let _ = self.inner.gate.set((gate, wait));
    }

    /// Looks `id` up with `find`; when it is not here yet but is a UUIDv7 made within the
    /// last minute (an assignment or suggestion the suggestions service created a moment ago,
    /// on its way through the event log), looks again after each batch this service's
    /// consumers apply, for the configured wait at most. An old or foreign id answers at once.
    async fn await_recent<T, F, Fut>(&self, id: Uuid, mut find: F) -> Result<Option<T>, AppError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, StoreError>>,
    {
        if let Some(found) = find().await? {
            return Ok(Some(found));
        }
        let Some((gate, wait)) = self.inner.gate.get() else {
            return Ok(None);
        };
        if !recent_v7(id, OffsetDateTime::now_utc()) {
            return Ok(None);
        }
        let deadline = tokio::time::Instant::now() + *wait;
        Ok(gate.wait_for(deadline, find).await?)
    }

    /// The suggestion `ref_id` (an assignment, opinion, reply or disagreement) belongs to.
    async fn suggestion_of(&self, ref_id: Uuid, what: &str) -> Result<SuggestionId, AppError> {
        self.await_recent(ref_id, || self.store().suggestion_of(ref_id))
            .await?
            .ok_or_else(|| unknown(what, ref_id))
    }

    /// The coordination side of a suggestion, as the caller may see it.
    pub async fn case(&self, p: &Principal, id: Uuid) -> Result<CaseView, AppError> {
        let not_found = || {
            AppError::not_found(format!(
                "suggestion {id} not found here (or this key is not party to it)"
            ))
        };
        reader(p)?;
        let r = self
            .await_recent(id, || self.store().load(SuggestionId(id)))
            .await?
            .ok_or_else(not_found)?;
        if party(p, &r.view()).is_err() {
            return Err(not_found());
        }
        self.view(p, SuggestionId(id), &r).await
    }

    async fn view(
        &self,
        p: &Principal,
        id: SuggestionId,
        r: &crate::store::CaseRecord,
    ) -> Result<CaseView, AppError> {
        let own = self.store().own_events(id, false).await?;
        Ok(CaseView::new(p, r, &own))
    }

    /// The caller's tasks (the office and auditors: everyone's, or one agency's).
    /// A page of an agency's event feed after `after` (a cursor; empty: the start; `now`: the
    /// current end, to follow only what comes next).
    pub async fn feed(
        &self,
        p: &Principal,
        agency_id: Option<Uuid>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<crate::feed::FeedPage, AppError> {
        use crate::feed::MAX_PAGE;
        let agency = crate::feed::feed_of(p, agency_id)?;
        let cursor = self.feed_cursor(agency, after).await?;
        let limit = limit.unwrap_or(100);
        if limit == 0 || limit > MAX_PAGE {
            return Err(AppError::malformed(format!(
                "`limit` is {limit}; give 1 to {MAX_PAGE}"
            )));
        }
        let rows = self
            .store()
            .feed(
                agency,
                cursor.seq,
                limit,
                crate::feed::hides_confidential(p),
            )
            .await?;
        let items = rows
            .into_iter()
            .map(|r| r.item(agency))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AppError::internal(&e))?;
        let next_cursor = items
            .last()
            .map_or_else(|| cursor.encode(), |i| i.cursor.clone());
        Ok(crate::feed::FeedPage {
            agency_id: agency.to_string(),
            items,
            next_cursor,
        })
    }

    /// Where a feed read starts.
    pub async fn feed_cursor(
        &self,
        agency: AgencyId,
        after: Option<&str>,
    ) -> Result<crate::feed::Cursor, AppError> {
        match after.unwrap_or("") {
            "now" => Ok(crate::feed::Cursor {
                agency,
                seq: self.store().feed_end(agency).await?,
            }),
            text => crate::feed::Cursor::parse(text, agency),
        }
    }

    pub async fn tasks(&self, p: &Principal, q: TaskQuery) -> Result<TaskPage, AppError> {
        reader(p)?;
        let agency = match (p.role, p.agency) {
            (Role::AssigningOffice | Role::Auditor, _) => q.agency_id.map(AgencyId),
            (_, Some(a)) => {
                if q.agency_id.is_some_and(|x| x != a.0) {
                    return Err(AppError::forbidden(
                        "an agency key lists its own tasks only; leave agency_id out",
                    ));
                }
                Some(a)
            }
            _ => return Err(AppError::forbidden("this key is not bound to an agency")),
        };
        let limit = q.limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AppError::invalid(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        let after = q.page_token.as_deref().map(decode_token).transpose()?;
        let mut rows = self
            .store()
            .tasks(
                agency,
                q.role,
                after,
                limit + 1,
                crate::feed::hides_confidential(p),
            )
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let today = self.today();
        Ok(TaskPage {
            next_page_token: more
                .then(|| rows.last().map(|t| encode_token(t.assignment_id)))
                .flatten(),
            tasks: rows.iter().map(|t| TaskView::new(t, today)).collect(),
        })
    }

    /// Events the consumer parked, oldest first. Assigning office and auditors.
    pub async fn parked_events(
        &self,
        p: &Principal,
        limit: u32,
    ) -> Result<Vec<banli_eventlog::inbox::Parked>, AppError> {
        if !matches!(p.role, Role::AssigningOffice | Role::Auditor) {
            return Err(AppError::forbidden(
                "parked events are for assigning_office and auditor keys",
            ));
        }
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AppError::invalid(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        banli_eventlog::inbox::Inbox::new("coordination", crate::consumer::CONSUMER)
            .parked(self.store().pool(), limit)
            .await
            .map_err(|e| AppError::internal(&e))
    }

    /// Runs one client command, for REST and gRPC alike: through the idempotency store (a
    /// retry with the same key or `Reference-Id` answers as the first run did), checked against
    /// the expected version, built, decided and committed. Answers the status and the JSON of
    /// the case after.
    #[tracing::instrument(name = "coordination.command", skip_all, fields(command = cmd.variant(), target = %cmd.target().0, key_id = %p.key_id, role = %p.role))]
    pub async fn command(
        &self,
        p: &Principal,
        expected: Option<u64>,
        once: Once,
        cmd: CaseCommand,
    ) -> Result<(u16, String), AppError> {
        self.idempotent(p, once.key.as_deref(), &once.hash, || async move {
            let view = self.execute(p, expected, cmd).await?;
            Ok((
                200,
                serde_json::to_string(&view).map_err(|e| AppError::internal(&e))?,
            ))
        })
        .await
    }

    /// Decides and records a command on the suggestion its target belongs to.
    async fn execute(
        &self,
        p: &Principal,
        expected: Option<u64>,
        cmd: CaseCommand,
    ) -> Result<CaseView, AppError> {
        let (target, what) = cmd.target();
        if matches!(p.role, Role::Auditor | Role::Deputy) {
            return Err(AppError::forbidden(format!(
                "a {} key may not act on coordination; it needs an agency or assigning_office key",
                p.role
            )));
        }
        let id = self.suggestion_of(target, what).await?;
        let r = self
            .store()
            .load(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("suggestion {id} not found here")))?;
        let view = r.view();
        // A unit not party to the item cannot tell it from none: 404 before any check of
        // version, state or role.
        if party(p, &view).is_err() {
            return Err(unknown(what, target));
        }
        if let Some(v) = expected
            && v != r.case.version
        {
            return Err(AppError::new(
                ErrorCode::StaleVersion,
                format!(
                    "the case is at version {}, not {v}; read it again",
                    r.case.version
                ),
            ));
        }
        let docs = banli_documents::access::resolve(self.documents(), p, &cmd.documents()).await?;
        let cmd = cmd.into_command(self.today(), &docs)?;
        let actor = p.actor();
        let decision =
            decide_coordination(&view, &r.case, &actor, &cmd, &self.rules()).map_err(|e| {
                let stale = matches!(
                    e,
                    DomainError::WrongState { .. } | DomainError::Precondition { .. }
                );
                let mut err = AppError::from(e);
                if stale {
                    err.detail = format!(
                        "{} (as this service last saw the suggestion, at version {}; if it changed a moment ago, send the Banli-Consistency token of the response that changed it)",
                        err.detail, r.replica_version
                    );
                }
                err
            })?;
        let mut case = r.case.clone();
        for e in &decision.events {
            case.apply(e);
        }
        let now = OffsetDateTime::now_utc();
        let mut effects = Some(decision.effects);
        let events: Vec<NewOwnEvent> = decision
            .events
            .into_iter()
            .map(|event| NewOwnEvent {
                event_id: Uuid::now_v7(),
                event,
                actor: actor.clone(),
                effects: effects.take().unwrap_or_default(),
                occurred_at: now,
            })
            .collect();
        self.store()
            .append(id, r.case.version, &case, &events)
            .await?;
        let after = self
            .store()
            .load(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("suggestion {id} not found here")))?;
        self.view(p, id, &after).await
    }
}

/// Reading coordination needs the office, an auditor or an agency key.
fn reader(p: &Principal) -> Result<(), AppError> {
    match p.role {
        Role::Deputy => Err(AppError::forbidden(
            "coordination between agencies is not open to deputy keys; read the suggestion instead",
        )),
        _ => Ok(()),
    }
}

/// The office is party to everything, auditors to everything but confidential items; an agency
/// to the items where it holds a live assignment.
fn party(p: &Principal, s: &Suggestion) -> Result<(), AppError> {
    match (p.role, p.agency) {
        (Role::AssigningOffice | Role::Auditor, _)
            if !s.details.confidential || p.role.reads_confidential() =>
        {
            Ok(())
        }
        (r, Some(a)) if r.is_agency_role() && s.active_assignments().any(|x| x.agency == a) => {
            Ok(())
        }
        _ => Err(AppError::forbidden(
            "this key's unit is not assigned to this suggestion",
        )),
    }
}

/// Whether `id` is a UUIDv7 whose time lies within the last minute (or a second ahead).
pub fn recent_v7(id: Uuid, now: OffsetDateTime) -> bool {
    if id.get_version_num() != 7 {
        return false;
    }
    let Some(ts) = id.get_timestamp() else {
        return false;
    };
    let (secs, nanos) = ts.to_unix();
    let made = i128::from(secs) * 1_000 + i128::from(nanos / 1_000_000);
    let now = now.unix_timestamp_nanos() / 1_000_000;
    (now - 60_000..=now + 1_000).contains(&made)
}

pub fn encode_token(id: Uuid) -> String {
    format!("t1.{}", id.simple())
}

pub fn decode_token(token: &str) -> Result<Uuid, AppError> {
    token
        .strip_prefix("t1.")
        .and_then(|t| Uuid::try_parse(t).ok())
        .ok_or_else(|| {
            AppError::malformed(
                "page_token is not a token this API issued; pass next_page_token back unchanged",
            )
        })
}

/// The one answer for an item this caller cannot act on: unknown, not yet known here, or
/// another unit's — the same words for each, so that they cannot be told apart.
fn unknown(what: &str, id: Uuid) -> AppError {
    AppError::not_found(format!(
        "{what} {id} not found (or this key is not party to it, or it is not yet known to the coordination service: send the Banli-Consistency token of the response that created it)"
    ))
}
