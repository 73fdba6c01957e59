-- The per-day counts also by the item's category and by its delegation (facet 'category' or
-- 'delegation' with its value; '' and '' for no facet), so that /v1/metrics scoped by either sums
-- days instead of aggregating assignments. Kept for every role only, with any agency and year.
-- The table is a sum over every suggestion: facts_version 3 rebuilds it from the replicas at
-- start, so it is recreated empty with its new key.
DROP TABLE followup_metric_days;

CREATE TABLE followup_metric_days (
    agency_id                  TEXT NOT NULL,
    year                       INTEGER NOT NULL,
    role                       TEXT NOT NULL,
    facet                      TEXT NOT NULL,
    facet_value                TEXT NOT NULL,
    day                        DATE NOT NULL,
    lead                       BIGINT NOT NULL,
    co                         BIGINT NOT NULL,
    separate                   BIGINT NOT NULL,
    sole                       BIGINT NOT NULL,
    live                       BIGINT NOT NULL,
    replied                    BIGINT NOT NULL,
    on_time                    BIGINT NOT NULL,
    responsible                BIGINT NOT NULL,
    communicated               BIGINT NOT NULL,
    met                        BIGINT NOT NULL,
    replied_responsible        BIGINT NOT NULL,
    resolved                   BIGINT NOT NULL,
    solved_or_planned          BIGINT NOT NULL,
    ever_b                     BIGINT NOT NULL,
    converted                  BIGINT NOT NULL,
    communicated_after_reply   BIGINT NOT NULL,
    communicated_in_recess     BIGINT NOT NULL,
    feedback_latest            BIGINT NOT NULL,
    feedback_latest_good       BIGINT NOT NULL,
    feedback_latest_satisfied  BIGINT NOT NULL,
    feedback_first             BIGINT NOT NULL,
    feedback_first_good        BIGINT NOT NULL,
    commitments_due            BIGINT NOT NULL,
    commitments_fulfilled      BIGINT NOT NULL,
    PRIMARY KEY (agency_id, year, role, facet, facet_value, day)
);
