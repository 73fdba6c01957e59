-- The seal: a checkpoint signed by the log's key over every stored leaf, rewritten in the
-- transaction of every append. A stored leaf beyond it was not written by the sequencer.
CREATE TABLE audit_seal (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size  INTEGER NOT NULL,
    root_hash  BLOB NOT NULL,
    note       TEXT NOT NULL,
    sealed_at  TEXT NOT NULL
);

-- Leaves an operator set aside (`banli audit quarantine`): stored beyond the seal, so signed
-- by nobody. Kept for inspection, out of the tree.
CREATE TABLE audit_quarantine (
    leaf_index      INTEGER NOT NULL,
    leaf_input      BLOB NOT NULL,
    leaf_hash       BLOB NOT NULL,
    record_type     TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    quarantined_at  TEXT NOT NULL,
    reason          TEXT NOT NULL
);
