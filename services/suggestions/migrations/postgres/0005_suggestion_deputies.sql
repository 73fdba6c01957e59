-- The deputies of each suggestion (its lead deputy and co-signers), so that a deputy's list is
-- one indexed query instead of a replay of every suggestion; and whether an item is
-- confidential, so that lists leave it out for those who may not see it.
CREATE TABLE suggestion_deputies (
    deputy_id      TEXT NOT NULL,
    suggestion_id  TEXT NOT NULL REFERENCES suggestions (id),
    PRIMARY KEY (deputy_id, suggestion_id)
);
INSERT INTO suggestion_deputies (deputy_id, suggestion_id)
    SELECT lead_deputy_id, id FROM suggestions
    ON CONFLICT DO NOTHING;
INSERT INTO suggestion_deputies (deputy_id, suggestion_id)
    SELECT j.value, e.suggestion_id
    FROM suggestion_events e,
         jsonb_array_elements_text(e.payload::jsonb -> 'data' -> 'details' -> 'co_signers') AS j(value)
    WHERE e.version = 1 AND e.event_type = 'suggestion.submitted'
    ON CONFLICT DO NOTHING;

ALTER TABLE suggestions ADD COLUMN confidential BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE suggestions SET confidential = TRUE WHERE id IN (
    SELECT suggestion_id FROM suggestion_events
    WHERE version = 1 AND event_type = 'suggestion.submitted'
      AND (payload::jsonb -> 'data' -> 'details' ->> 'confidential') = 'true'
);
