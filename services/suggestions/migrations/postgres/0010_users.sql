-- Accounts for people (the web console's users) beside API keys for systems: a role and its
-- agency or deputy as for keys, an argon2id password hash (PHC string; NULL until the person sets
-- it), the SHA-256 of a one-time set-password token with its expiry, and the lockout state.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    role              TEXT NOT NULL,
    agency_id         TEXT REFERENCES agencies (id),
    deputy_id         TEXT REFERENCES deputies (id),
    password_hash     TEXT,
    setup_hash        TEXT,
    setup_expires_at  TIMESTAMPTZ,
    failed_logins     BIGINT NOT NULL DEFAULT 0,
    locked_until      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    disabled_at       TIMESTAMPTZ
);
