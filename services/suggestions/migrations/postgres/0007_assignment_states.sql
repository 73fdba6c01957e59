-- The review sweeper finds the replies awaiting the assigning office's review (答复审查) by
-- their assignments' state.
CREATE INDEX suggestion_assignments_state ON suggestion_assignments (state, suggestion_id);
