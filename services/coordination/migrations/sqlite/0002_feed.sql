-- The per-agency event feed: one row per event and agency party to it (a live assignment on the
-- suggestion before or after the event), written in the transaction that consumes the event.
-- `seq` orders every agency's feed; writers take one lock per transaction (PostgreSQL: an
-- advisory lock) so that rows become visible in `seq` order and a cursor never skips one.
CREATE TABLE feed_entries (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id          TEXT NOT NULL,
    event_id           TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    aggregate_type     TEXT NOT NULL,
    aggregate_id       TEXT NOT NULL,
    aggregate_version  BIGINT NOT NULL,
    occurred_at        TEXT NOT NULL,
    payload            TEXT NOT NULL
);
CREATE INDEX feed_entries_agency ON feed_entries (agency_id, seq);
