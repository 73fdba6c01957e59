-- Topics (共性问题): the assigning office, or a unit for its own items, links suggestions of any
-- year, session and agency into one issue followed across years.
CREATE TABLE followup_topics (
    id               TEXT PRIMARY KEY,
    owner_agency_id  TEXT NOT NULL,
    title            TEXT NOT NULL,
    description      TEXT NOT NULL,
    created_on       DATE NOT NULL,
    version          BIGINT NOT NULL
);
CREATE INDEX followup_topics_owner ON followup_topics (owner_agency_id);

CREATE TABLE followup_topic_items (
    topic_id       TEXT NOT NULL,
    suggestion_id  TEXT NOT NULL,
    linked_on      DATE NOT NULL,
    PRIMARY KEY (topic_id, suggestion_id)
);
CREATE INDEX followup_topic_items_suggestion ON followup_topic_items (suggestion_id);
