-- The audit log's checkpoints published as `audit.checkpoint` events (one aggregate per log):
-- the last version and tree size published, updated in the transaction that writes the event's
-- outbox row, so that versions are contiguous and a size is published once.
CREATE TABLE followup_checkpoint_events (
    origin   TEXT PRIMARY KEY,
    version  BIGINT NOT NULL,
    size     BIGINT NOT NULL
);
