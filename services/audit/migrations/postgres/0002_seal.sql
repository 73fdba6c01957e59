-- The seal: a checkpoint signed by the log's key over every stored leaf, rewritten in the
-- transaction of every append. A stored leaf beyond it was not written by the sequencer.
CREATE TABLE audit_seal (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size  BIGINT NOT NULL,
    root_hash  BYTEA NOT NULL,
    note       TEXT NOT NULL,
    sealed_at  TIMESTAMPTZ NOT NULL
);

-- Leaves an operator set aside (`banli audit quarantine`): stored beyond the seal, so signed
-- by nobody. Kept for inspection, out of the tree.
CREATE TABLE audit_quarantine (
    leaf_index      BIGINT NOT NULL,
    leaf_input      BYTEA NOT NULL,
    leaf_hash       BYTEA NOT NULL,
    record_type     TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL,
    reason          TEXT NOT NULL
);
