-- Stage plans (阶段安排, postgres): one per agency and year, written by the assigning office or the
-- agency's own office; each supervision round is a timer (followup_timers) that issues a notice
-- on the items short of the stage's targets.
CREATE TABLE followup_stage_plans (
    agency_id         TEXT NOT NULL,
    year              INTEGER NOT NULL,
    plan_id           TEXT NOT NULL UNIQUE,
    issuer_agency_id  TEXT NOT NULL,
    version           BIGINT NOT NULL,
    plan              TEXT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agency_id, year)
);
