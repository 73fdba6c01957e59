-- Whether a case's suggestion is confidential (涉密), kept beside the replica so that lists and
-- feeds read by keys that may not see confidential items (auditors) leave them out in SQL.
-- Set when the case is created (a suggestion's confidentiality is fixed at submission); the
-- cases stored before this migration take it from their replica.
ALTER TABLE coordination_cases ADD COLUMN confidential BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE coordination_cases SET confidential = COALESCE(json_extract(replica, '$.details.confidential'), 0);
