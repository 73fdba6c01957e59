-- The web console's sessions: the SHA-256 of the cookie's secret (never the secret), whose
-- account, when it ends (an absolute limit) and when it was last used (for the idle limit).
CREATE TABLE user_sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);

-- The position a person holds in their agency (内部审批: the approval steps they decide), as for
-- keys.
ALTER TABLE users ADD COLUMN position TEXT;
