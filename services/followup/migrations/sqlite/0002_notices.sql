-- Supervision notices (督办通知) and the records they add to the audit log (sqlite).

-- Each notice as its current state, with a version for If-Match.
CREATE TABLE followup_notices (
    notice_id         TEXT PRIMARY KEY,
    issuer_agency_id  TEXT NOT NULL,
    target_agency_id  TEXT NOT NULL,
    state             TEXT NOT NULL,
    response_due      DATE NOT NULL,
    version           BIGINT NOT NULL,
    notice            TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX followup_notices_target ON followup_notices (target_agency_id, notice_id);

-- Audit records written in the transaction of their change, then appended to the audit log in
-- order (the log skips a source id it holds already).
CREATE TABLE followup_audit_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id    TEXT NOT NULL UNIQUE,
    record       TEXT NOT NULL,
    appended_at  TEXT
);
