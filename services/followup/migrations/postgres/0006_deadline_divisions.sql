-- The division each deadline's assignment was dispatched to, for the lists per division; kept
-- with the per-assignment metrics rows.
ALTER TABLE followup_deadlines ADD COLUMN division_id TEXT;
CREATE INDEX followup_deadlines_division ON followup_deadlines (division_id, due) WHERE NOT met;
