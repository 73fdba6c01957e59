-- Implementation and reporting back in the metrics (facts_version 2 rebuilds every row at start):
-- the item's category, lead deputy and delegation (scopes of /v1/metrics), the first communication after the
-- first reply and in the recess phase, and each commitment with its target date and whether it
-- was converted by then (implementation_rate).

ALTER TABLE followup_facts ADD COLUMN category TEXT NOT NULL DEFAULT '';
ALTER TABLE followup_facts ADD COLUMN lead_deputy_id TEXT NOT NULL DEFAULT '';
ALTER TABLE followup_facts ADD COLUMN delegation TEXT NOT NULL DEFAULT '';
ALTER TABLE followup_facts ADD COLUMN after_reply_contact_on DATE;
ALTER TABLE followup_facts ADD COLUMN recess_contact_on DATE;
CREATE INDEX followup_facts_category ON followup_facts (category, assigned_on);
CREATE INDEX followup_facts_deputy ON followup_facts (lead_deputy_id);
CREATE INDEX followup_facts_delegation ON followup_facts (delegation, assigned_on);

CREATE TABLE followup_fact_commitments (
    suggestion_id  TEXT NOT NULL,
    commitment_id  TEXT NOT NULL,
    assignment_id  TEXT NOT NULL,
    target_date    DATE NOT NULL,
    fulfilled      BOOLEAN NOT NULL,
    PRIMARY KEY (suggestion_id, commitment_id)
);
CREATE INDEX followup_fact_commitments_assignment ON followup_fact_commitments (assignment_id);

ALTER TABLE followup_metric_days ADD COLUMN communicated_after_reply BIGINT NOT NULL DEFAULT 0;
ALTER TABLE followup_metric_days ADD COLUMN communicated_in_recess BIGINT NOT NULL DEFAULT 0;
ALTER TABLE followup_metric_days ADD COLUMN commitments_due BIGINT NOT NULL DEFAULT 0;
ALTER TABLE followup_metric_days ADD COLUMN commitments_fulfilled BIGINT NOT NULL DEFAULT 0;
