-- The audit log's tables (SQLite). Never edit a released migration: add a new one.

-- The leaves, in order: the exact bytes each leaf commits to and its hash. Append-only.
CREATE TABLE audit_leaves (
    leaf_index   INTEGER PRIMARY KEY,
    leaf_input   BLOB NOT NULL,
    leaf_hash    BLOB NOT NULL,
    record_type  TEXT NOT NULL,
    source_id    TEXT NOT NULL UNIQUE,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX audit_leaves_hash ON audit_leaves (leaf_hash);

-- Signed checkpoints, one per signed tree size. Append-only.
CREATE TABLE audit_checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root_hash  BLOB NOT NULL,
    note       TEXT NOT NULL,
    signed_at  TEXT NOT NULL
);

-- Personal data beside the leaves (the leaf holds a salted commitment): erasable without
-- touching the tree.
CREATE TABLE audit_personal (
    leaf_index  INTEGER PRIMARY KEY,
    salt        BLOB,
    data        TEXT,
    erased_at   TEXT
);

CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit_leaves rows cannot be changed'); END;
CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit_leaves rows cannot be deleted'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit_checkpoints rows cannot be changed'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit_checkpoints rows cannot be deleted'); END;
