-- Webhooks: per agency, endpoints that receive the agency's feed as signed POSTs. Times that
-- are compared are unix milliseconds.
CREATE TABLE webhook_endpoints (
    id               TEXT PRIMARY KEY,
    agency_id        TEXT NOT NULL,
    url              TEXT NOT NULL,
    -- JSON array of event types; [] is every type.
    event_types      TEXT NOT NULL,
    description      TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('active', 'disabled')),
    disabled_reason  TEXT,
    -- The feed position delivered up to.
    cursor           BIGINT NOT NULL,
    -- Consecutive failed attempts, since when, and when the next one is due.
    failures         INTEGER NOT NULL,
    failing_since    BIGINT,
    next_attempt_at  BIGINT NOT NULL,
    -- The delivery worker holding the endpoint, and until when.
    lease_owner      TEXT,
    leased_until     BIGINT,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_agency ON webhook_endpoints (agency_id);

-- Signing secrets, sealed (AES-256-GCM) under the service's webhook key: signing needs them, so
-- they cannot be hashed. A rotated-out secret signs too until `expires_at`.
CREATE TABLE webhook_secrets (
    endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    sealed       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    PRIMARY KEY (endpoint_id, id)
);

-- Every attempt, for the endpoint's delivery log.
CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    attempt      INTEGER NOT NULL,
    status       INTEGER,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
