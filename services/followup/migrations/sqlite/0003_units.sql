-- Which agencies hold (or held) an assignment on each suggestion: the suggestions a metric for
-- an agency reads.
CREATE TABLE followup_units (
    agency_id      TEXT NOT NULL,
    suggestion_id  TEXT NOT NULL,
    PRIMARY KEY (agency_id, suggestion_id)
);
