-- The follow-up service's transactional outbox: supervision notice events (issued,
-- acknowledged, answered, escalated), written in the notice's transaction and published to the
-- event log, where the coordination service puts each into the notified agency's feed.
CREATE TABLE followup_outbox (
    seq                BIGSERIAL PRIMARY KEY,
    event_id           TEXT NOT NULL UNIQUE,
    event_type         TEXT NOT NULL,
    aggregate_type     TEXT NOT NULL,
    aggregate_id       TEXT NOT NULL,
    aggregate_version  BIGINT NOT NULL,
    payload            TEXT NOT NULL,
    occurred_at        TIMESTAMPTZ NOT NULL,
    published_at       TIMESTAMPTZ
);
CREATE INDEX followup_outbox_unpublished ON followup_outbox (seq) WHERE published_at IS NULL;
