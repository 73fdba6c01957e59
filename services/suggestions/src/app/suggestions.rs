//! Suggestions: submit, read, list, and every command on one (one path for both transports),
//! and the commands the coordination service mirrors in.

use super::*;

impl App {
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
        let found = self.store().delegations(&named).await?;
        let missing: Vec<DeputyId> = named
            .iter()
            .filter(|d| !found.iter().any(|(f, _)| f == *d))
            .copied()
            .collect();
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
            delegation: found
                .iter()
                .find(|(d, _)| *d == lead)
                .map(|(_, g)| g.clone())
                .unwrap_or_default(),
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
        let attached = crate::command::Attached(
            banli_documents::access::resolve(self.documents(), p, &cmd.documents()).await?,
        );
        let approval_chain = match cmd.needs_chain_of().and_then(|a| s.assignment(a)) {
            Some(a) => self.approval_chain_of(a.agency).await?,
            None => Default::default(),
        };
        let deputy_names = if cmd.needs_deputy_names() {
            self.deputy_names(&s).await?
        } else {
            Vec::new()
        };
        let looked_up = crate::command::LookedUp {
            unit_divisions,
            approval_chain,
            attached,
            deputy_names,
        };
        let kind = cmd.into_kind(&s, today, p, looked_up)?;
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
    pub(super) async fn commit(
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

    /// `agency`'s approval chain, from the cache when read within [`super::CHAIN_CACHE_TTL`].
    async fn approval_chain_of(&self, agency: AgencyId) -> Result<ApprovalChain, AppError> {
        if let Some(c) = self.inner.chains.get(&agency) {
            return Ok(c);
        }
        let c = self.store().approval_chain(agency).await?;
        self.inner.chains.put(agency, c.clone());
        Ok(c)
    }

    /// The names of `s`'s deputies (lead and co-signers), as the directory has them.
    pub(super) async fn deputy_names(&self, s: &Suggestion) -> Result<Vec<String>, AppError> {
        let mut out = Vec::new();
        for d in s.deputies() {
            match self.store().get_deputy(d).await {
                Ok(x) => out.push(x.name),
                Err(crate::store::StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
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
                    // A drafted reply is internal to its unit until issued.
                    SuggestionEvent::ReplySubmittedForApproval(d)
                        if !s.draft_readable(reader, d.assignment_id) =>
                    {
                        serde_json::json!({"assignment_id": d.assignment_id.0, "withheld": true})
                    }
                    e => serde_json::to_value(e).unwrap_or_default(),
                };
                serde_json::json!({ "version": i + 1, "type": e.event_type(), "data": data })
            })
            .collect())
    }
}
