-- Whether a suggestion is confidential (涉密), beside its replica, so that the lists and exports
-- read by keys that may not see confidential items (auditors) leave them out in SQL. Written
-- with a case's first row (confidentiality is fixed at submission); the rows stored before this
-- migration take it from their replica.
ALTER TABLE followup_cases ADD COLUMN confidential BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE followup_cases SET confidential = COALESCE(json_extract(replica, '$.details.confidential'), 0);
