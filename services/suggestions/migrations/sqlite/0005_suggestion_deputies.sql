-- The deputies of each suggestion (its lead deputy and co-signers), so that a deputy's list is
-- one indexed query instead of a replay of every suggestion; and whether an item is
-- confidential, so that lists leave it out for those who may not see it.
CREATE TABLE suggestion_deputies (
    deputy_id      TEXT NOT NULL,
    suggestion_id  TEXT NOT NULL REFERENCES suggestions (id),
    PRIMARY KEY (deputy_id, suggestion_id)
);
INSERT OR IGNORE INTO suggestion_deputies (deputy_id, suggestion_id)
    SELECT lead_deputy_id, id FROM suggestions;
INSERT OR IGNORE INTO suggestion_deputies (deputy_id, suggestion_id)
    SELECT j.value, e.suggestion_id
    FROM suggestion_events e, json_each(e.payload, '$.data.details.co_signers') j
    WHERE e.version = 1 AND e.event_type = 'suggestion.submitted';

ALTER TABLE suggestions ADD COLUMN confidential INTEGER NOT NULL DEFAULT 0;
UPDATE suggestions SET confidential = 1 WHERE id IN (
    SELECT suggestion_id FROM suggestion_events
    WHERE version = 1 AND event_type = 'suggestion.submitted'
      AND json_extract(payload, '$.data.details.confidential') = 1
);
