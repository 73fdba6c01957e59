//! The working-day calendar and deadline arithmetic, and recomputing open deadlines against new
//! calendar data.

use super::*;

impl App {
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

    /// 答复审查: accepts, as `actor` (the assigning office), every reply whose review window
    /// closed before today without a decision; returns how many suggestions changed. The
    /// deputies are then asked for their rating as if the office had accepted it.
    pub async fn lapse_reply_reviews(&self, actor: &Actor) -> Result<u64, AppError> {
        let mut changed = 0;
        for id in self.store().awaiting_review_ids(10_000).await? {
            let Some(s) = self.store().load(id).await? else {
                continue;
            };
            let cmd = Command {
                actor: actor.clone(),
                kind: CommandKind::LapseReplyReviews { on: self.today() },
            };
            let events = decide(Some(&s), &cmd, &self.rules())?;
            if events.is_empty() {
                continue;
            }
            let (_, appended) = self.commit(Arc::new(s), events, &cmd, 16).await?;
            if !appended.is_empty() {
                changed += 1;
                tracing::info!(suggestion_id = %id, "replies accepted as their review window closed");
            }
        }
        Ok(changed)
    }

    /// 公开答复: publishes, as `actor` (the assigning office), every reply whose publication
    /// date passed before today (redacted); returns how many suggestions changed. A reply still
    /// awaiting the office's review waits for the next round.
    pub async fn publish_due_replies(&self, actor: &Actor) -> Result<u64, AppError> {
        let mut changed = 0;
        for id in self.store().publications_due(self.today(), 10_000).await? {
            let Some(s) = self.store().load(id).await? else {
                continue;
            };
            let names = self.deputy_names(&s).await?;
            let cmd = Command {
                actor: actor.clone(),
                kind: CommandKind::PublishDueReplies {
                    names,
                    on: self.today(),
                },
            };
            let events = decide(Some(&s), &cmd, &self.rules())?;
            if events.is_empty() {
                continue;
            }
            let (_, appended) = self.commit(Arc::new(s), events, &cmd, 16).await?;
            if !appended.is_empty() {
                changed += 1;
                tracing::info!(suggestion_id = %id, replies = appended.len(), "replies published as their publication date passed");
            }
        }
        Ok(changed)
    }

    /// Runs [`Self::lapse_reply_reviews`] and [`Self::publish_due_replies`] every `every` until
    /// `stop` completes.
    pub async fn review_sweeper(
        self,
        actor: Actor,
        every: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.lapse_reply_reviews(&actor).await {
                tracing::warn!(error = %e, "accepting replies whose review window closed failed; tried again in a minute");
            }
            if let Err(e) = self.publish_due_replies(&actor).await {
                tracing::warn!(error = %e, "publishing the replies due failed; tried again in a minute");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => {}
            }
        }
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
}
