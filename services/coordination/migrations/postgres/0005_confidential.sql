-- Whether a case's suggestion is confidential (涉密), kept beside the replica so that lists and
-- feeds read by keys that may not see confidential items (auditors) leave them out in SQL.
-- Set when the case is created (a suggestion's confidentiality is fixed at submission); the
-- cases stored before this migration take it from their replica.
-- PostgreSQL's JSON functions refuse a NUL escape, which a title may hold: it is read as a
-- space (`\\u0000`, an escaped backslash, stays valid JSON after the same replacement).
ALTER TABLE coordination_cases ADD COLUMN confidential BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE coordination_cases SET confidential = COALESCE((replace(replica, '\u0000', '\u0020')::json -> 'details' ->> 'confidential')::boolean, FALSE);
