-- 内部审批: each agency's approval chain for its replies (the positions that sign a draft off,
-- in order, as JSON), and the position an API key holds in its agency (the steps it decides).
CREATE TABLE approval_chains (
    agency_id          TEXT PRIMARY KEY REFERENCES agencies (id),
    steps              TEXT NOT NULL,
    key_items_add_head BOOLEAN NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
ALTER TABLE api_keys ADD COLUMN position TEXT;
