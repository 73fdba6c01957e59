-- The sequencer: the one process that appends to and signs the log. The process holding the
-- sequencer lock (PostgreSQL: an advisory lock on its own session; SQLite: a lock on a file beside
-- the database) claims this row, raising `epoch`; every append checks, in its own transaction,
-- that its holder and epoch are still the row's, so a process that lost the lock cannot write
-- after its successor opened the log. `renewed_ms`: when the holder last confirmed it (ms since
-- 1970, the database's clock).
CREATE TABLE audit_sequencer (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    renewed_ms  INTEGER NOT NULL
);
