-- The directory is published to the other services' replicas through the outbox: a row is
-- `exported` once its current record has an outbox row. Rows written before this migration
-- start unexported, so the next start publishes the whole directory once.
ALTER TABLE agencies ADD COLUMN exported BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_keys ADD COLUMN exported BOOLEAN NOT NULL DEFAULT FALSE;
