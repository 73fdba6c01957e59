-- The audit log's tables (PostgreSQL). Never edit a released migration: add a new one.

-- The leaves, in order: the exact bytes each leaf commits to and its hash. Append-only.
CREATE TABLE audit_leaves (
    leaf_index   BIGINT PRIMARY KEY,
    leaf_input   BYTEA NOT NULL,
    leaf_hash    BYTEA NOT NULL,
    record_type  TEXT NOT NULL,
    source_id    TEXT NOT NULL UNIQUE,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_leaves_hash ON audit_leaves (leaf_hash);

-- Signed checkpoints, one per signed tree size. Append-only.
CREATE TABLE audit_checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root_hash  BYTEA NOT NULL,
    note       TEXT NOT NULL,
    signed_at  TIMESTAMPTZ NOT NULL
);

-- Personal data beside the leaves (the leaf holds a salted commitment): erasable without
-- touching the tree.
CREATE TABLE audit_personal (
    leaf_index  BIGINT PRIMARY KEY,
    salt        BYTEA,
    data        TEXT,
    erased_at   TIMESTAMPTZ
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_leaves_append_only BEFORE UPDATE OR DELETE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_leaves_no_truncate BEFORE TRUNCATE ON audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
