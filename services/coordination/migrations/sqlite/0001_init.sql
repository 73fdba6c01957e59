-- The coordination service's tables (SQLite). Never edit a released migration: add a new one.

-- Per suggestion: the replica of the suggestion, built from the suggestions service's events,
-- and the coordination case, built from this service's own events; each with its version.
CREATE TABLE coordination_cases (
    suggestion_id    TEXT PRIMARY KEY,
    replica_version  INTEGER NOT NULL,
    replica          TEXT NOT NULL,
    version          INTEGER NOT NULL,
    state            TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- This service's events, in order per suggestion. `effects` holds the suggestion events the
-- suggestions service is expected to record for a mirrored command; until it confirms them
-- (or refuses), they count in this service's view of the suggestion.
CREATE TABLE coordination_events (
    suggestion_id  TEXT NOT NULL REFERENCES coordination_cases (suggestion_id),
    version        INTEGER NOT NULL,
    event_id       TEXT NOT NULL UNIQUE,
    event_type     TEXT NOT NULL,
    payload        TEXT NOT NULL,
    actor          TEXT NOT NULL,
    effects        TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'refused', 'final')),
    status_reason  TEXT,
    occurred_at    TEXT NOT NULL,
    PRIMARY KEY (suggestion_id, version)
);
CREATE INDEX coordination_events_pending ON coordination_events (suggestion_id) WHERE status = 'pending';

-- The transactional outbox.
CREATE TABLE coordination_outbox (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id           TEXT NOT NULL UNIQUE,
    event_type         TEXT NOT NULL,
    aggregate_type     TEXT NOT NULL,
    aggregate_id       TEXT NOT NULL,
    aggregate_version  INTEGER NOT NULL,
    payload            TEXT NOT NULL,
    occurred_at        TEXT NOT NULL,
    published_at       TEXT
);
CREATE INDEX coordination_outbox_unpublished ON coordination_outbox (seq) WHERE published_at IS NULL;

-- One row per assignment: what each unit owes, for task lists by agency.
CREATE TABLE coordination_tasks (
    assignment_id   TEXT PRIMARY KEY,
    suggestion_id   TEXT NOT NULL REFERENCES coordination_cases (suggestion_id),
    agency_id       TEXT NOT NULL,
    role            TEXT NOT NULL,
    state           TEXT NOT NULL,
    opinion         TEXT NOT NULL,
    co_opinion_due  TEXT,
    reply_due       TEXT
);
CREATE INDEX coordination_tasks_agency ON coordination_tasks (agency_id, assignment_id);

-- Which suggestion an assignment, opinion, reply or disagreement id belongs to.
CREATE TABLE coordination_refs (
    ref_id         TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    suggestion_id  TEXT NOT NULL
);
