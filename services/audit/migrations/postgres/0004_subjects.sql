-- Whose personal data a leaf's commitment covers: the deputies its record names
-- (`banli audit erase --subject` finds a deputy's leaves here). Written with the leaf.
CREATE TABLE audit_subjects (
    subject_id  TEXT NOT NULL,
    leaf_index  BIGINT NOT NULL,
    PRIMARY KEY (subject_id, leaf_index)
);
