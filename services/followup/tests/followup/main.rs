//! The follow-up service fed with the suggestions service's real events (a suggestion assigned
//! to a lead and a co-handler, on SQLite): the deadlines it tracks, the alert timers it
//! schedules, alerts fired once by two replicas, the overdue tiers and the due-soon list per
//! agency, a redelivered batch changing nothing, and a deadline met or moved.

mod approval;
mod commitments;
mod deadlines;
mod grpc;
mod lists;
mod notices;
mod stages;
mod support;
mod topics;
