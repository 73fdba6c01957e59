//! The application layer: one handler per use case, called by both REST and gRPC.
//!
//! Each change loads the suggestion, checks the policy and the expected version, lets the domain
//! decide, and appends the events with their outbox rows in one transaction.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use banli_calendar::{Calendar, Deadline, OutOfRangePolicy};
use banli_domain::directory::{Agency, Deputy, Division, Session};
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, Role, RuleProfile, Rules};
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::command::{SuggestionCommand, Target};
use crate::dto::*;
use crate::error::{AppError, ErrorCode};
use crate::policy::{self, Action, Principal, Visibility};
use crate::store::{InboxEntry, ListFilter, NewEvent, Store, StoreError};
use banli_api::cache::Bounded;

pub use banli_api::Clock;

/// What became of a command applied for another service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteOutcome {
    Applied,
    /// The guards refused it now; the refusal is recorded as an event.
    Refused(String),
    /// The command changed nothing; nothing was written.
    NoChange,
    /// Its effect had been recorded before.
    Duplicate,
    UnknownSuggestion,
}

/// Everything a use case needs.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    profile: RuleProfile,
    calendar: Calendar,
    clock: Clock,
    /// The last written state of recently changed suggestions (commands start from it).
    recent: Bounded<SuggestionId, Arc<Suggestion>>,
    /// Authenticated keys, by the SHA-256 of the token, for [`KEY_CACHE_TTL`].
    keys: Bounded<String, Principal>,
    /// Sessions never change once created.
    sessions: Bounded<SessionId, Session>,
}

/// The most co-signers one suggestion may name.
pub const MAX_CO_SIGNERS: usize = 500;

/// How long an authenticated key is trusted without asking the database again. A key revoked
/// through this process is forgotten at once; one revoked elsewhere stops working within this.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// The most items one page returns.
pub const MAX_PAGE: u32 = 200;

impl App {
    pub fn new(store: Store, profile: RuleProfile, calendar: Calendar, clock: Clock) -> App {
        App {
            inner: Arc::new(Inner {
                store,
                profile,
                calendar,
                clock,
                recent: Bounded::new(2_000, None),
                keys: Bounded::new(10_000, Some(KEY_CACHE_TTL)),
                sessions: Bounded::new(1_000, None),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn today(&self) -> Date {
        self.inner.clock.today()
    }

    pub fn profile(&self) -> &RuleProfile {
        &self.inner.profile
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            profile: &self.inner.profile,
            calendar: &self.inner.calendar,
        }
    }

    /// Resolves a bearer token to a principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let digest: String = Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(p) = self.inner.keys.get(&digest) {
            return Ok(p);
        }
        let key = self.store().authenticate(token).await?.ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthenticated,
                "the API key is unknown or revoked; create one with `banli keys create`",
            )
        })?;
        let p = Principal {
            key_id: key.id,
            role: key.role,
            agency: key.agency_id,
            deputy: key.deputy_id,
            reference: None,
            client_cert: key.client_cert,
        };
        self.inner.keys.put(digest, p.clone());
        Ok(p)
    }

    /// [`Self::authenticate`] as a port, for whatever checks keys against this service's
    /// (metrics, reflection, a coordination service in the same process in tests).
    pub fn authenticator(&self) -> banli_api::Authenticator {
        let app = self.clone();
        std::sync::Arc::new(move |token: String| {
            let app = app.clone();
            Box::pin(async move { app.authenticate(&token).await })
        })
    }

    // ---- idempotency ----

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
        Fut: std::future::Future<Output = Result<(u16, String), AppError>>,
    {
        let store = self.store();
        banli_api::idempotent(
            store.db(),
            store.idempotency_keys(),
            p,
            key,
            request_hash,
            f,
        )
        .await
    }

    // ---- directory ----

    pub async fn create_session(
        &self,
        p: &Principal,
        r: CreateSession,
    ) -> Result<SessionView, AppError> {
        policy::allow(p, Action::ManageDirectory)?;
        let s = Session::new(
            SessionId::new(),
            r.body,
            r.term,
            r.number,
            &r.name,
            r.opens_on,
            r.closes_on,
        )?;
        self.store().create_session(&s).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => AppError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "session {} {}-{} already exists",
                    r.body_name(),
                    r.term,
                    r.number
                ),
            ),
            e => e.into(),
        })?;
        Ok((&s).into())
    }

    pub async fn list_sessions(&self, p: &Principal) -> Result<Vec<SessionView>, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        Ok(self
            .store()
            .list_sessions()
            .await?
            .iter()
            .map(SessionView::from)
            .collect())
    }

    pub async fn get_session(&self, p: &Principal, id: Uuid) -> Result<SessionView, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        Ok((&self.store().get_session(SessionId(id)).await?).into())
    }

    pub async fn create_deputy(
        &self,
        p: &Principal,
        r: CreateDeputy,
    ) -> Result<DeputyView, AppError> {
        policy::allow(p, Action::ManageDirectory)?;
        if r.name.trim().is_empty() || r.delegation.trim().is_empty() {
            return Err(AppError::invalid("name and delegation must not be empty"));
        }
        let d = Deputy {
            id: DeputyId::new(),
            name: r.name.trim().to_owned(),
            delegation: r.delegation.trim().to_owned(),
            contact: r.contact,
        };
        self.store().create_deputy(&d).await?;
        Ok((&d).into())
    }

    pub async fn get_deputy(&self, p: &Principal, id: Uuid) -> Result<DeputyView, AppError> {
        policy::allow(p, Action::ReadDeputy(DeputyId(id)))
            .map_err(|_| AppError::not_found(format!("deputy {id} not found")))?;
        Ok((&self.store().get_deputy(DeputyId(id)).await?).into())
    }

    pub async fn create_agency(
        &self,
        p: &Principal,
        r: CreateAgency,
    ) -> Result<AgencyView, AppError> {
        policy::allow(p, Action::ManageDirectory)?;
        if r.name.trim().is_empty() {
            return Err(AppError::invalid("name must not be empty"));
        }
        let a = Agency {
            id: AgencyId::new(),
            name: r.name.trim().to_owned(),
            assigning_office: false,
        };
        self.store().create_agency(&a).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => AppError::new(
                ErrorCode::AlreadyExists,
                format!("an agency named `{}` already exists", a.name),
            ),
            e => e.into(),
        })?;
        Ok((&a).into())
    }

    pub async fn list_agencies(&self, p: &Principal) -> Result<Vec<AgencyView>, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        Ok(self
            .store()
            .list_agencies()
            .await?
            .iter()
            .map(AgencyView::from)
            .collect())
    }

    pub async fn get_agency(&self, p: &Principal, id: Uuid) -> Result<AgencyView, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        Ok((&self.store().get_agency(AgencyId(id)).await?).into())
    }

    pub async fn create_division(
        &self,
        p: &Principal,
        agency: Uuid,
        r: CreateDivision,
    ) -> Result<DivisionView, AppError> {
        policy::allow(p, Action::ManageDivisions(AgencyId(agency)))?;
        if r.name.trim().is_empty() {
            return Err(AppError::invalid("name must not be empty"));
        }
        let d = Division {
            id: DivisionId::new(),
            agency_id: AgencyId(agency),
            name: r.name.trim().to_owned(),
        };
        self.store().create_division(&d).await?;
        Ok((&d).into())
    }

    pub async fn list_divisions(
        &self,
        p: &Principal,
        agency: Uuid,
    ) -> Result<Vec<DivisionView>, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        self.store().get_agency(AgencyId(agency)).await?;
        Ok(self
            .store()
            .list_divisions(AgencyId(agency))
            .await?
            .iter()
            .map(DivisionView::from)
            .collect())
    }

    // ---- keys ----

    #[tracing::instrument(name = "suggestions.create_key", skip_all, fields(key_id = %p.key_id))]
    pub async fn create_key(&self, p: &Principal, r: CreateKey) -> Result<CreatedKey, AppError> {
        policy::allow(p, Action::ManageKeys)?;
        let (agency, deputy) = self.key_binding(r.role, r.agency_id, r.deputy_id).await?;
        let client_cert = match r.client_cert_sha256.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let hex: String = text.chars().filter(|c| *c != ':').collect();
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(AppError::new(
                        ErrorCode::InvalidArgument,
                        "client_cert_sha256 must be a certificate's SHA-256 fingerprint: 64 hex digits (colons allowed), as `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints it",
                    ));
                }
                Some(hex.to_ascii_lowercase())
            }
        };
        let (key, token) = self
            .store()
            .create_bound_key(r.role, agency, deputy, r.label.trim(), client_cert)
            .await?;
        tracing::info!(key_id = %key.id, role = %key.role, cert_bound = key.client_cert.is_some(), "api key created");
        Ok(CreatedKey {
            key: (&key).into(),
            token,
        })
    }

    /// Checks what a new key of `role` is bound to.
    pub async fn key_binding(
        &self,
        role: Role,
        agency: Option<Uuid>,
        deputy: Option<Uuid>,
    ) -> Result<(Option<AgencyId>, Option<DeputyId>), AppError> {
        match role {
            Role::AssigningOffice => {
                let office = self
                    .store()
                    .list_agencies()
                    .await?
                    .into_iter()
                    .find(|a| a.assigning_office)
                    .ok_or_else(|| {
                        AppError::new(
                            ErrorCode::FailedPrecondition,
                            "no assigning office exists; run `banli init` first",
                        )
                    })?;
                if agency.is_some_and(|a| a != office.id.0) {
                    return Err(AppError::invalid(
                        "an assigning_office key belongs to the assigning office; leave agency_id out",
                    ));
                }
                Ok((Some(office.id), None))
            }
            Role::Deputy => {
                let d = deputy.ok_or_else(|| AppError::invalid("a deputy key needs deputy_id"))?;
                self.store().get_deputy(DeputyId(d)).await?;
                Ok((None, Some(DeputyId(d))))
            }
            Role::Auditor => Ok((None, None)),
            _ => {
                let a = agency
                    .ok_or_else(|| AppError::invalid(format!("a {role} key needs agency_id")))?;
                let found = self.store().get_agency(AgencyId(a)).await?;
                if found.assigning_office {
                    return Err(AppError::invalid(
                        "agency roles belong to handling agencies, not the assigning office",
                    ));
                }
                Ok((Some(found.id), None))
            }
        }
    }

    pub async fn list_keys(&self, p: &Principal) -> Result<Vec<KeyView>, AppError> {
        policy::allow(p, Action::ManageKeys)?;
        Ok(self
            .store()
            .list_keys()
            .await?
            .iter()
            .map(KeyView::from)
            .collect())
    }

    #[tracing::instrument(name = "suggestions.revoke_key", skip_all, fields(key_id = %p.key_id, revoked = %id))]
    pub async fn revoke_key(&self, p: &Principal, id: Uuid) -> Result<KeyView, AppError> {
        policy::allow(p, Action::ManageKeys)?;
        if id == p.key_id {
            return Err(AppError::invalid(
                "a key cannot revoke itself; use another assigning_office key",
            ));
        }
        let key = self.store().revoke_key(id).await?;
        self.inner.keys.clear();
        tracing::info!(key_id = %id, "api key revoked");
        Ok((&key).into())
    }

    // ---- calendar ----

    pub fn calendar_days(
        &self,
        p: &Principal,
        from: Date,
        to: Date,
    ) -> Result<CalendarDays, AppError> {
        policy::allow(p, Action::UseCalendar)?;
        let cal = &self.inner.calendar;
        if to < from {
            return Err(AppError::invalid("`to` is before `from`"));
        }
        if (to - from).whole_days() > 731 {
            return Err(AppError::invalid(
                "at most two years (732 days) per request",
            ));
        }
        if !cal.covers(from) || !cal.covers(to) {
            return Err(AppError::invalid(format!(
                "the calendar data (version {}) covers {} to {}; ask within that range",
                cal.version(),
                date_text(cal.first_day()),
                date_text(cal.last_day())
            )));
        }
        let mut days = Vec::new();
        let mut d = from;
        while d <= to {
            let kind = cal
                .day(d)
                .ok_or_else(|| AppError::invalid("outside the calendar data"))?;
            days.push(CalendarDay {
                date: d,
                workday: kind.is_workday(),
                note: kind.note(),
            });
            match d.next_day() {
                Some(n) => d = n,
                None => break,
            }
        }
        Ok(CalendarDays {
            days,
            calendar_version: cal.version().to_owned(),
        })
    }

    pub fn compute_deadline(
        &self,
        p: &Principal,
        r: &DeadlineRequest,
    ) -> Result<DeadlineView, AppError> {
        policy::allow(p, Action::UseCalendar)?;
        if matches!(
            r.duration,
            banli_calendar::DurationSpec::AfterDeadline { .. }
        ) {
            return Err(AppError::invalid(
                "after_deadline durations need other deadlines; give calendar_days, working_days, calendar_months or fixed_date",
            ));
        }
        let policy = if r.allow_weekends_only {
            OutOfRangePolicy::WeekendsOnly
        } else {
            OutOfRangePolicy::Refuse
        };
        let d = Deadline::compute(
            &self.inner.calendar,
            "start",
            r.start,
            &r.duration,
            policy,
            &BTreeMap::new(),
        )
        .map_err(|e| AppError::invalid(e.to_string()))?;
        Ok((&d).into())
    }

    /// Recomputes the open deadlines of every suggestion still in handling against the calendar
    /// data in force: the assigning office's command for newer calendar data (the service also
    /// runs it once at start for calendar data it has not recomputed against).
    pub async fn recompute_deadlines(&self, p: &Principal) -> Result<Recomputation, AppError> {
        policy::allow(p, Action::RecomputeDeadlines)?;
        self.recompute_all(&p.actor()).await
    }

    /// The calendar data's version.
    pub fn calendar_version(&self) -> &str {
        self.inner.calendar.version()
    }

    /// [`App::recompute_deadlines`] as `actor` (the assigning office), recorded as done for the
    /// calendar data's version. Each suggestion whose dates move gets one `deadlines_recomputed`
    /// event with the old and the new dates; the rest are left alone.
    pub async fn recompute_all(&self, actor: &Actor) -> Result<Recomputation, AppError> {
        const LISTED: usize = 1_000;
        let version = self.inner.calendar.version().to_owned();
        let mut out = Recomputation {
            calendar_version: version.clone(),
            examined: 0,
            suggestions_moved: 0,
            deadlines_moved: 0,
            moved: Vec::new(),
        };
        let mut after = None;
        loop {
            let ids = self.store().open_ids(after, 500).await?;
            let Some(last) = ids.last() else {
                break;
            };
            after = Some(*last);
            for id in ids {
                out.examined += 1;
                let changes = self.recompute_one(actor, id).await?;
                if changes.is_empty() {
                    continue;
                }
                out.suggestions_moved += 1;
                out.deadlines_moved += changes.len() as u64;
                for c in changes {
                    if out.moved.len() < LISTED {
                        out.moved.push(MovedDeadline {
                            suggestion_id: id.0,
                            assignment_id: c.assignment_id.map(|a| a.0),
                            kind: c.kind.as_str().to_owned(),
                            old_due: c.old_due,
                            new_due: c.deadline.due,
                        });
                    }
                }
            }
        }
        self.store()
            .record_recomputation(&version, out.examined, out.suggestions_moved)
            .await?;
        tracing::info!(
            calendar_version = %version,
            examined = out.examined,
            suggestions_moved = out.suggestions_moved,
            deadlines_moved = out.deadlines_moved,
            "open deadlines recomputed against the calendar data"
        );
        Ok(out)
    }

    /// One suggestion's open deadlines recomputed and appended (retried on a concurrent write).
    async fn recompute_one(
        &self,
        actor: &Actor,
        id: SuggestionId,
    ) -> Result<Vec<DeadlineChange>, AppError> {
        let cmd = Command {
            actor: actor.clone(),
            kind: CommandKind::RecomputeDeadlines { on: self.today() },
        };
        let Some(s) = self.store().load(id).await? else {
            return Ok(Vec::new());
        };
        let events = decide(Some(&s), &cmd, &self.rules())?;
        let (_, appended) = self.commit(Arc::new(s), events, &cmd, 16).await?;
        Ok(appended
            .into_iter()
            .filter_map(|e| match e {
                SuggestionEvent::DeadlinesRecomputed(r) => Some(r.changes),
                _ => None,
            })
            .flatten()
            .collect())
    }

    // ---- suggestions ----

    #[tracing::instrument(name = "suggestions.submit", skip_all, fields(key_id = %p.key_id, role = %p.role))]
    pub async fn submit(
        &self,
        p: &Principal,
        r: SubmitSuggestion,
    ) -> Result<SuggestionView, AppError> {
        let lead = DeputyId(r.lead_deputy_id);
        policy::allow(p, Action::Submit(lead))?;
        if r.co_signer_ids.len() > MAX_CO_SIGNERS {
            return Err(AppError::invalid(format!(
                "at most {MAX_CO_SIGNERS} co-signers"
            )));
        }
        let session = match self.inner.sessions.get(&SessionId(r.session_id)) {
            Some(s) => s,
            None => {
                let s = self.store().get_session(SessionId(r.session_id)).await?;
                self.inner.sessions.put(s.id, s.clone());
                s
            }
        };
        let named: Vec<DeputyId> = std::iter::once(r.lead_deputy_id)
            .chain(r.co_signer_ids.iter().copied())
            .map(DeputyId)
            .collect();
        let missing = self.store().missing_deputies(&named).await?;
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
            return Err(AppError::invalid(format!(
                "deputy {} does not exist; create it first",
                list.join(", ")
            )));
        }
        let on = r.received_on.unwrap_or_else(|| self.today());
        let details = SuggestionDetails {
            session_id: session.id,
            number: r.number.trim().to_owned(),
            title: r.title.trim().to_owned(),
            body: r.body,
            category: r.category,
            kind: r.kind.unwrap_or(if session.is_in_session(on) {
                ItemKind::Session
            } else {
                ItemKind::Recess
            }),
            lead_deputy: lead,
            co_signers: r.co_signer_ids.into_iter().map(DeputyId).collect(),
            key_supervised: r.key_supervised,
            priority: r.priority,
            confidential: r.confidential,
            disclosure: r.disclosure,
        };
        let cmd = Command {
            actor: p.actor(),
            kind: CommandKind::Submit { details, on },
        };
        let events = decide(None, &cmd, &self.rules())?;
        let Some(SuggestionEvent::Submitted(first)) = events.first() else {
            return Err(AppError::internal(&"submit produced no Submitted event"));
        };
        let mut s = Suggestion::new(SuggestionId::new(), first);
        for e in &events[1..] {
            s.apply(e);
        }
        let now = OffsetDateTime::now_utc();
        let new: Vec<NewEvent> = events
            .into_iter()
            .map(|e| NewEvent::new(e, p.actor(), now))
            .collect();
        self.store().append(None, &s, &new).await?;
        let view = SuggestionView::for_reader(&s, self.today(), opinion_reader(p));
        self.inner.recent.put(s.id, Arc::new(s));
        Ok(view)
    }

    /// The state a command starts from: the last state this process wrote, else the stored one.
    async fn current(&self, p: &Principal, id: Uuid) -> Result<Arc<Suggestion>, AppError> {
        match self.inner.recent.get(&SuggestionId(id)) {
            Some(s) if policy::can_see(p, &s) => Ok(s),
            _ => self.visible(p, id).await.map(Arc::new),
        }
    }

    /// Loads a suggestion the caller is party to; anything else is "not found".
    async fn visible(&self, p: &Principal, id: Uuid) -> Result<Suggestion, AppError> {
        let s = self.store().load(SuggestionId(id)).await?;
        match s {
            Some(s) if policy::can_see(p, &s) => Ok(s),
            _ => Err(AppError::not_found(format!(
                "suggestion {id} not found (or this key is not party to it)"
            ))),
        }
    }

    pub async fn get(&self, p: &Principal, id: Uuid) -> Result<SuggestionView, AppError> {
        Ok(SuggestionView::for_reader(
            &self.visible(p, id).await?,
            self.today(),
            opinion_reader(p),
        ))
    }

    pub async fn list(
        &self,
        p: &Principal,
        mut filter: ListFilter,
        page_token: Option<&str>,
    ) -> Result<SuggestionPage, AppError> {
        policy::allow(p, Action::ListSuggestions)?;
        match policy::visibility(p)? {
            Visibility::All => {}
            Visibility::Agency(a) => {
                if filter.agency_id.is_some_and(|x| x != a) {
                    return Err(AppError::forbidden(
                        "an agency key lists only its own agency's suggestions; leave agency_id out or use your own",
                    ));
                }
                filter.agency_id = Some(a);
            }
            Visibility::Deputy(_) => {}
        }
        if let Some(token) = page_token {
            filter.after = Some(decode_token(token)?);
        }
        let limit = if filter.limit == 0 {
            50
        } else {
            filter.limit.min(MAX_PAGE)
        };
        match policy::visibility(p)? {
            // A deputy's list: the items they lead or co-signed, filtered in SQL.
            Visibility::Deputy(d) => filter.deputy_id = Some(d),
            Visibility::Agency(_) => {}
            Visibility::All => filter.without_confidential = !policy::sees_confidential(p),
        }
        filter.limit = limit + 1;
        let mut rows = self.store().list(&filter).await?;
        let next = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            rows.last().map(|r| encode_token(r.id.0))
        });
        let items: Vec<SuggestionSummaryView> = rows.into_iter().map(Into::into).collect();
        Ok(SuggestionPage {
            items,
            next_page_token: next.flatten(),
        })
    }

    /// Runs one client command on a suggestion, for REST and gRPC alike: through the
    /// idempotency store (a retry with the same key or `Reference-Id` answers as the first run
    /// did), checked against the expected version, built against the current state, decided and
    /// committed. Answers the status and the JSON of the suggestion after.
    #[tracing::instrument(name = "suggestions.command", skip_all, fields(suggestion_id = %target.suggestion_id, command = cmd.variant(), key_id = %p.key_id, role = %p.role))]
    pub async fn command(
        &self,
        p: &Principal,
        target: Target,
        cmd: SuggestionCommand,
    ) -> Result<(u16, String), AppError> {
        let Target {
            suggestion_id,
            expected_version,
            once,
        } = target;
        self.idempotent(p, once.key.as_deref(), &once.hash, || async move {
            let view = self
                .execute(p, suggestion_id, expected_version, cmd)
                .await?;
            Ok((
                200,
                serde_json::to_string(&view).map_err(|e| AppError::internal(&e))?,
            ))
        })
        .await
    }

    /// Runs one command on a suggestion. `expected` is the client's `If-Match` version.
    async fn execute(
        &self,
        p: &Principal,
        id: Uuid,
        expected: Option<u64>,
        cmd: SuggestionCommand,
    ) -> Result<SuggestionView, AppError> {
        policy::allow(p, Action::ChangeSuggestion)?;
        let s = self.current(p, id).await?;
        if let Some(v) = expected
            && v != s.version
        {
            return Err(AppError::new(
                ErrorCode::StaleVersion,
                format!(
                    "the suggestion is at version {}, not {v}; read it again",
                    s.version
                ),
            ));
        }
        let today = self.today();
        let unit_divisions = match cmd.needs_divisions_of() {
            Some(a) => self.divisions_of(&s, a).await?,
            None => Vec::new(),
        };
        let kind = cmd.into_kind(&s, today, p, unit_divisions)?;
        let cmd = Command {
            actor: p.actor(),
            kind,
        };
        let (s, events) = match decide(Some(&s), &cmd, &self.rules()) {
            Ok(events) => (s, events),
            Err(e) => {
                // The cached state may trail a change another writer (the coordination
                // consumer) committed a moment ago: decide again on the stored state.
                let fresh = match self.store().load(s.id).await? {
                    Some(f) if f.version != s.version => Arc::new(f),
                    _ => return Err(e.into()),
                };
                self.inner.recent.put(fresh.id, fresh.clone());
                if let Some(v) = expected
                    && v != fresh.version
                {
                    return Err(AppError::new(
                        ErrorCode::StaleVersion,
                        format!(
                            "the suggestion is at version {}, not {v}; read it again",
                            fresh.version
                        ),
                    ));
                }
                let events = decide(Some(&fresh), &cmd, &self.rules())?;
                (fresh, events)
            }
        };
        // Without If-Match, a change another writer (a consumer) committed in between is not
        // the caller's concern: the command is decided again on the stored state (bounded).
        let retries = if expected.is_none() { 16 } else { 0 };
        let (after, _) = self.commit(s, events, &cmd, retries).await?;
        Ok(SuggestionView::for_reader(&after, today, opinion_reader(p)))
    }

    /// Appends `events` (decided for `cmd` on `s`), deciding again on the stored state after a
    /// concurrent write, at most `retries` times. Returns the state after and the events
    /// appended (none when the command changes nothing).
    async fn commit(
        &self,
        mut s: Arc<Suggestion>,
        mut events: Vec<SuggestionEvent>,
        cmd: &Command,
        mut retries: u32,
    ) -> Result<(Arc<Suggestion>, Vec<SuggestionEvent>), AppError> {
        loop {
            if events.is_empty() {
                return Ok((s, events));
            }
            let mut after = (*s).clone();
            for e in &events {
                after.apply(e);
            }
            let now = OffsetDateTime::now_utc();
            let new: Vec<NewEvent> = events
                .iter()
                .cloned()
                .map(|e| NewEvent::new(e, cmd.actor.clone(), now))
                .collect();
            match self.store().append(Some(&s), &after, &new).await {
                Ok(()) => {
                    let after = Arc::new(after);
                    self.inner.recent.put(after.id, after.clone());
                    return Ok((after, events));
                }
                Err(crate::store::StoreError::Conflict { .. }) if retries > 0 => {
                    retries -= 1;
                    self.inner.recent.remove(&s.id);
                    let fresh = self.store().load(s.id).await?.ok_or_else(|| {
                        AppError::not_found(format!("suggestion {} not found", s.id))
                    })?;
                    events = decide(Some(&fresh), cmd, &self.rules())?;
                    s = Arc::new(fresh);
                }
                Err(e) => {
                    self.inner.recent.remove(&s.id);
                    return Err(e.into());
                }
            }
        }
    }

    /// Applies a command another service accepted (the coordination service's mirrored
    /// commands), as `actor`, recording `source` in the inbox in the same transaction. The guards
    /// run again here: when the suggestion has moved on since the other service decided, the
    /// refusal is recorded as an event instead. Retries on a concurrent change.
    pub async fn apply_remote(
        &self,
        actor: &Actor,
        id: SuggestionId,
        kind: CommandKind,
        source: InboxEntry<'_>,
    ) -> Result<RemoteOutcome, AppError> {
        for _ in 0..5 {
            let Some(s) = self.store().load(id).await? else {
                return Ok(RemoteOutcome::UnknownSuggestion);
            };
            let today = self.today();
            let cmd = Command {
                actor: actor.clone(),
                kind: kind.clone(),
            };
            let (events, outcome) = match decide(Some(&s), &cmd, &self.rules()) {
                Ok(events) if events.is_empty() => {
                    return Ok(RemoteOutcome::NoChange);
                }
                Ok(events) => (events, RemoteOutcome::Applied),
                Err(e) => (
                    vec![SuggestionEvent::CoordinationRefused(CoordinationRefused {
                        source_event: source.envelope.event_id,
                        command: kind.name().to_owned(),
                        reason: e.to_string(),
                        on: today,
                    })],
                    RemoteOutcome::Refused(e.to_string()),
                ),
            };
            let mut after = s.clone();
            for e in &events {
                after.apply(e);
            }
            let now = OffsetDateTime::now_utc();
            let new: Vec<NewEvent> = events
                .into_iter()
                .map(|e| NewEvent {
                    causation_id: Some(source.envelope.event_id),
                    ..NewEvent::new(e, actor.clone(), now)
                })
                .collect();
            match self
                .store()
                .append_with(Some(&s), &after, &new, Some(source))
                .await
            {
                Ok(()) => {
                    self.inner.recent.put(after.id, Arc::new(after));
                    return Ok(outcome);
                }
                Err(StoreError::Conflict { .. }) => {
                    self.inner.recent.remove(&id);
                }
                Err(StoreError::AlreadyExists(_)) => return Ok(RemoteOutcome::Duplicate),
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::new(
            ErrorCode::Conflict,
            format!("suggestion {id} kept changing; the event will be delivered again"),
        ))
    }

    /// The divisions of the unit an assignment belongs to (empty for an unknown assignment),
    /// for the domain to check a dispatch against.
    async fn divisions_of(
        &self,
        s: &Suggestion,
        assignment: AssignmentId,
    ) -> Result<Vec<DivisionId>, AppError> {
        let Some(a) = s.assignment(assignment) else {
            return Ok(Vec::new());
        };
        Ok(self
            .store()
            .list_divisions(a.agency)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect())
    }

    /// The event history of a suggestion the caller is party to.
    pub async fn events(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<Vec<serde_json::Value>, AppError> {
        let s = self.visible(p, id).await?;
        let reader = opinion_reader(p);
        let events = self.store().events(SuggestionId(id)).await?;
        Ok(events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let data = match e {
                    // An opinion the caller may not read: its place in the history, not its text.
                    SuggestionEvent::OpinionSubmitted(o)
                        if !s.opinion_readable(reader, o.opinion.assignment_id) =>
                    {
                        serde_json::json!({"opinion": {"id": o.opinion.id.0, "assignment_id": o.opinion.assignment_id.0}, "withheld": true})
                    }
                    e => serde_json::to_value(e).unwrap_or_default(),
                };
                serde_json::json!({ "version": i + 1, "type": e.event_type(), "data": data })
            })
            .collect())
    }
}

/// How much of the co-handling opinions a caller reads: the office and auditors all of them, an
/// agency those [`Suggestion::opinion_readers`] gives it, a deputy none.
fn opinion_reader(p: &Principal) -> banli_domain::suggestion::OpinionReader {
    use banli_domain::suggestion::OpinionReader;
    match (p.role, p.agency) {
        (Role::AssigningOffice | Role::Auditor, _) => OpinionReader::All,
        (r, Some(a)) if r.is_agency_role() => OpinionReader::Agency(a),
        _ => OpinionReader::Nobody,
    }
}

trait BodyName {
    fn body_name(&self) -> &'static str;
}

impl BodyName for CreateSession {
    fn body_name(&self) -> &'static str {
        match self.body {
            Body::Npc => "npc",
            Body::Cppcc => "cppcc",
        }
    }
}

/// Page tokens are opaque to clients: the last id, in a versioned wrapper.
pub fn encode_token(id: Uuid) -> String {
    format!("p1.{}", id.simple())
}

pub fn decode_token(token: &str) -> Result<SuggestionId, AppError> {
    token
        .strip_prefix("p1.")
        .and_then(|t| Uuid::try_parse(t).ok())
        .map(SuggestionId)
        .ok_or_else(|| {
            AppError::malformed(
                "page_token is not a token this API issued; pass next_page_token back unchanged",
            )
        })
}
