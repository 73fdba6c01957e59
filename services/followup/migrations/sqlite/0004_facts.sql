-- The metrics tables (sqlite): one row per assignment with every dated fact a formula reads, so
-- that the figures of an agency as of any day are one aggregate over its rows
-- (banli_domain::metrics::Counts). Rebuilt from the replica whenever it changes; a replica
-- whose facts_version is behind the code's is rebuilt at start.

CREATE TABLE followup_facts (
    agency_id         TEXT NOT NULL,
    assignment_id     TEXT NOT NULL,
    suggestion_id     TEXT NOT NULL,
    division_id       TEXT,
    role              TEXT NOT NULL,
    responsible       BOOLEAN NOT NULL,
    session_id        TEXT NOT NULL,
    year              INTEGER NOT NULL,
    assigned_on       DATE NOT NULL,
    superseded        BOOLEAN NOT NULL,
    replied_on        DATE,
    effective_due     DATE,
    first_contact_on  DATE,
    first_meeting_on  DATE,
    key_item          BOOLEAN NOT NULL,
    led_by_principal  BOOLEAN NOT NULL,
    -- The item carries commitments (it belongs in the B-class ledger with first_b_on).
    has_commitments   BOOLEAN NOT NULL,
    -- The item's class now and the day it took effect; an earlier day's class comes from
    -- followup_fact_classes.
    class_now         TEXT,
    class_since       DATE,
    first_b_on        DATE,
    converted_on      DATE,
    PRIMARY KEY (agency_id, assignment_id)
) WITHOUT ROWID;
CREATE INDEX followup_facts_suggestion ON followup_facts (suggestion_id);

CREATE TABLE followup_fact_classes (
    suggestion_id  TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    on_date        DATE NOT NULL,
    class          TEXT NOT NULL,
    PRIMARY KEY (suggestion_id, seq)
);

CREATE TABLE followup_fact_feedback (
    suggestion_id  TEXT NOT NULL,
    deputy_id      TEXT NOT NULL,
    round          INTEGER NOT NULL,
    level          TEXT NOT NULL,
    on_date        DATE NOT NULL,
    superseded_on  DATE,
    PRIMARY KEY (suggestion_id, deputy_id, round)
);

ALTER TABLE followup_cases ADD COLUMN facts_version INTEGER;

-- The counts per slice and day: what each day added to (or took from) the counts of one agency
-- ('' = every agency), one year of assignment (0 = every year) and one role ('' = every role).
-- The counts as of a day are the sums over the days up to it (banli_domain::metrics::day_changes),
-- so a figure reads at most one row per day whatever the number of assignments.
CREATE TABLE followup_metric_days (
    agency_id                  TEXT NOT NULL,
    year                       INTEGER NOT NULL,
    role                       TEXT NOT NULL,
    day                        DATE NOT NULL,
    lead                       BIGINT NOT NULL,
    co                         BIGINT NOT NULL,
    separate                   BIGINT NOT NULL,
    sole                       BIGINT NOT NULL,
    live                       BIGINT NOT NULL,
    replied                    BIGINT NOT NULL,
    on_time                    BIGINT NOT NULL,
    responsible                BIGINT NOT NULL,
    communicated               BIGINT NOT NULL,
    met                        BIGINT NOT NULL,
    replied_responsible        BIGINT NOT NULL,
    resolved                   BIGINT NOT NULL,
    solved_or_planned          BIGINT NOT NULL,
    ever_b                     BIGINT NOT NULL,
    converted                  BIGINT NOT NULL,
    feedback_latest            BIGINT NOT NULL,
    feedback_latest_good       BIGINT NOT NULL,
    feedback_latest_satisfied  BIGINT NOT NULL,
    feedback_first             BIGINT NOT NULL,
    feedback_first_good        BIGINT NOT NULL,
    PRIMARY KEY (agency_id, year, role, day)
) WITHOUT ROWID;
