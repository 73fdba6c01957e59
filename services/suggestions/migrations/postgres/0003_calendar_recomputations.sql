-- The calendar data versions open deadlines were recomputed against. When the service starts
-- with calendar data it has not recomputed against yet, every open deadline of every suggestion
-- still in handling is recomputed once (the command RecomputeDeadlines, whose event records the
-- old and the new date), and the run is recorded here.
CREATE TABLE calendar_recomputations (
    calendar_version  TEXT PRIMARY KEY,
    examined          BIGINT NOT NULL,
    moved             BIGINT NOT NULL,
    finished_at       TIMESTAMPTZ NOT NULL
);
