-- The follow-up service's tables (postgres). Never edit a released migration: add a new one.

-- Its replica of each suggestion, built from the suggestions service's events.
CREATE TABLE followup_cases (
    suggestion_id    TEXT PRIMARY KEY,
    replica_version  BIGINT NOT NULL,
    replica          TEXT NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Every deadline of every live assignment, and whether it is met; previous_due is the due date
-- before the last move (an extension, re-handling, a calendar change).
CREATE TABLE followup_deadlines (
    assignment_id  TEXT NOT NULL,
    kind           TEXT NOT NULL,
    suggestion_id  TEXT NOT NULL,
    agency_id      TEXT NOT NULL,
    due            DATE NOT NULL,
    previous_due   DATE,
    met            BOOLEAN NOT NULL,
    PRIMARY KEY (assignment_id, kind)
);
CREATE INDEX followup_deadlines_open ON followup_deadlines (agency_id, due) WHERE NOT met;
CREATE INDEX followup_deadlines_suggestion ON followup_deadlines (suggestion_id);

-- Reminders and overdue flags as they went out, one per timer.
CREATE TABLE followup_alerts (
    timer_key      TEXT PRIMARY KEY,
    suggestion_id  TEXT NOT NULL,
    assignment_id  TEXT NOT NULL,
    agency_id      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    due            DATE NOT NULL,
    alert          TEXT NOT NULL,
    level          TEXT NOT NULL,
    fired_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX followup_alerts_agency ON followup_alerts (agency_id, fired_at);
