-- API keys and stored responses for Idempotency-Key (PostgreSQL).

-- A key is shown once; only the SHA-256 of its secret part is stored.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    role         TEXT NOT NULL,
    agency_id    TEXT REFERENCES agencies (id),
    deputy_id    TEXT REFERENCES deputies (id),
    label        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);

-- One row per (key, Idempotency-Key): pending while the first request runs, then its response.
CREATE TABLE idempotency_keys (
    principal_id  TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER,
    response      TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (principal_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
