-- 公开答复: every reply the platform publishes or will: its publication date (`due`), and once
-- published what the public reads (redacted; `body` is NULL where the item's disclosure is
-- `summary`). A withdrawn publication's row is deleted (its events stay). Written with the
-- events that move it, in the same transaction.
CREATE TABLE reply_publications (
    reply_id         TEXT PRIMARY KEY,
    suggestion_id    TEXT NOT NULL,
    due              DATE,
    published_on     DATE,
    agency_id        TEXT,
    number           TEXT,
    title            TEXT,
    class            TEXT,
    reply_type       TEXT,
    document_number  TEXT,
    replied_on       DATE,
    body             TEXT,
    disclosure       TEXT,
    automatic        BOOLEAN
);
-- The public pages: newest first, and per agency.
CREATE INDEX reply_publications_public ON reply_publications (published_on DESC, reply_id DESC)
    WHERE published_on IS NOT NULL;
CREATE INDEX reply_publications_agency ON reply_publications (agency_id, published_on DESC, reply_id DESC)
    WHERE published_on IS NOT NULL;
-- The publication sweeper: rows due and not published.
CREATE INDEX reply_publications_due ON reply_publications (due) WHERE published_on IS NULL;
