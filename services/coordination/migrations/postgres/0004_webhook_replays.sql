-- When an endpoint was last replayed (unix ms; 0: never): replays are rate-limited per endpoint,
-- so an agency cannot make the platform re-send its whole feed on demand.
ALTER TABLE webhook_endpoints ADD COLUMN replayed_at BIGINT NOT NULL DEFAULT 0;
