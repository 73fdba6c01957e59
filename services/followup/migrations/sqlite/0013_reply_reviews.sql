-- 答复审查: when the assigning office first reviewed a unit's reply and whether it returned it,
-- for the returned rate; the per-day sums carry the two counts. No item had a review before
-- this migration, so the defaults are the stored facts and nothing is rebuilt.
ALTER TABLE followup_facts ADD COLUMN first_review_on DATE;
ALTER TABLE followup_facts ADD COLUMN first_review_returned BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE followup_metric_days ADD COLUMN reviewed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE followup_metric_days ADD COLUMN returned BIGINT NOT NULL DEFAULT 0;
