//! `banli.suggestions.v1.CalendarService`: the calendar's days, deadlines computed, recomputation.

use super::*;

#[tonic::async_trait]
impl CalendarService for Grpc {
    async fn list_days(
        &self,
        req: Request<pb::ListDaysRequest>,
    ) -> Result<Response<pb::ListDaysResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.get_ref();
        let days = self
            .app
            .calendar_days(&p, date("from", &r.from)?, date("to", &r.to)?)?;
        Ok(Response::new(pb::ListDaysResponse {
            days: days
                .days
                .into_iter()
                .map(|d| pb::CalendarDay {
                    date: text(d.date),
                    workday: d.workday,
                    note: d.note.unwrap_or_default(),
                })
                .collect(),
            calendar_version: days.calendar_version,
        }))
    }

    async fn recompute_deadlines(
        &self,
        req: Request<pb::RecomputeDeadlinesRequest>,
    ) -> Result<Response<pb::RecomputeDeadlinesResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = self.app.recompute_deadlines(&p).await?;
        Ok(Response::new(pb::RecomputeDeadlinesResponse {
            calendar_version: r.calendar_version,
            examined: r.examined,
            suggestions_moved: r.suggestions_moved,
            deadlines_moved: r.deadlines_moved,
            moved: r
                .moved
                .into_iter()
                .map(|m| pb::MovedDeadline {
                    suggestion_id: m.suggestion_id.to_string(),
                    assignment_id: m.assignment_id.map(|a| a.to_string()).unwrap_or_default(),
                    kind: m.kind,
                    old_due: text(m.old_due),
                    new_due: text(m.new_due),
                })
                .collect(),
        }))
    }

    async fn compute_deadline(
        &self,
        req: Request<pb::ComputeDeadlineRequest>,
    ) -> Result<Response<pc::Deadline>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let duration = match r.duration.and_then(|d| d.kind) {
            Some(pb::duration::Kind::CalendarDays(days)) => DurationSpec::CalendarDays { days },
            Some(pb::duration::Kind::WorkingDays(days)) => DurationSpec::WorkingDays { days },
            Some(pb::duration::Kind::CalendarMonths(months)) => {
                DurationSpec::CalendarMonths { months }
            }
            Some(pb::duration::Kind::FixedDate(d)) => DurationSpec::FixedDate {
                date: date("fixed_date", &d)?,
            },
            None => return Err(AppError::malformed("duration is required").into()),
        };
        let v = self.app.compute_deadline(
            &p,
            &dto::DeadlineRequest {
                start: date("start", &r.start)?,
                duration,
                allow_weekends_only: r.allow_weekends_only,
            },
        )?;
        Ok(Response::new(deadline(&v)))
    }
}
