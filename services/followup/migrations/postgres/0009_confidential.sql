-- Whether a suggestion is confidential (涉密), beside its replica, so that the lists and exports
-- read by keys that may not see confidential items (auditors) leave them out in SQL. Written
-- with a case's first row (confidentiality is fixed at submission); the rows stored before this
-- migration take it from their replica (PostgreSQL's JSON functions refuse a NUL escape, which a
-- title may hold: it is read as a space; `\\u0000` stays valid JSON after the same replacement).
ALTER TABLE followup_cases ADD COLUMN confidential BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE followup_cases SET confidential = COALESCE((replace(replica, '\u0000', '\u0020')::json -> 'details' ->> 'confidential')::boolean, FALSE);
