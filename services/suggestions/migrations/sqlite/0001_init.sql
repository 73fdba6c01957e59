-- The suggestions service's tables (SQLite). Never edit a released migration: add a new one.

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL CHECK (body IN ('npc', 'cppcc')),
    term        INTEGER NOT NULL CHECK (term > 0),
    number      INTEGER NOT NULL CHECK (number > 0),
    name        TEXT NOT NULL,
    opens_on    TEXT NOT NULL,
    closes_on   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (body, term, number)
);

CREATE TABLE deputies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    delegation  TEXT NOT NULL,
    -- Personal data: never copied into events or the audit log.
    contact     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE agencies (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    assigning_office INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL
);

CREATE TABLE divisions (
    id          TEXT PRIMARY KEY,
    agency_id   TEXT NOT NULL REFERENCES agencies (id),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (agency_id, name)
);

-- One row per suggestion: its version (the lock for appends) and the columns lists filter on.
-- The state itself is rebuilt from suggestion_events.
CREATE TABLE suggestions (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions (id),
    number          TEXT NOT NULL,
    state           TEXT NOT NULL,
    version         INTEGER NOT NULL CHECK (version > 0),
    title           TEXT NOT NULL,
    lead_deputy_id  TEXT NOT NULL,
    key_supervised  INTEGER NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (session_id, number)
);
CREATE INDEX suggestions_state ON suggestions (state, id);

-- Every event of every suggestion, in order; (suggestion_id, version) makes a lost update
-- impossible.
CREATE TABLE suggestion_events (
    suggestion_id  TEXT NOT NULL REFERENCES suggestions (id),
    version        INTEGER NOT NULL,
    event_id       TEXT NOT NULL UNIQUE,
    event_type     TEXT NOT NULL,
    payload        TEXT NOT NULL,
    actor          TEXT NOT NULL,
    occurred_at    TEXT NOT NULL,
    PRIMARY KEY (suggestion_id, version)
);

-- Assignments as rows, for lists by agency, role and due date.
CREATE TABLE suggestion_assignments (
    assignment_id  TEXT PRIMARY KEY,
    suggestion_id  TEXT NOT NULL REFERENCES suggestions (id),
    agency_id      TEXT NOT NULL,
    role           TEXT NOT NULL,
    state          TEXT NOT NULL,
    reply_due      TEXT
);
CREATE INDEX suggestion_assignments_agency ON suggestion_assignments (agency_id, suggestion_id);

-- The transactional outbox: written in the same transaction as the state change.
CREATE TABLE outbox (
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
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
