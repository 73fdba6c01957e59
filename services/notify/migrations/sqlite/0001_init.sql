-- The notification service (sqlite). Times are Unix milliseconds.

-- What the service keeps of each suggestion to word its messages: its number and title, its
-- deputies, its units and commitments, the last closure request (JSON, banli_notify::messages::Subject).
CREATE TABLE notify_subjects (
    suggestion_id  TEXT PRIMARY KEY,
    subject        TEXT NOT NULL,
    version        BIGINT NOT NULL
);

-- A deputy's channels, addresses, quiet hours and language.
CREATE TABLE notify_preferences (
    deputy_id   TEXT PRIMARY KEY,
    email       TEXT,
    phone       TEXT,
    channels    TEXT NOT NULL,
    quiet_from  TEXT,
    quiet_to    TEXT,
    language    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One message to one deputy: the inbox holds every one; each channel's delivery is below.
CREATE TABLE notify_notifications (
    id             TEXT PRIMARY KEY,
    source_event   TEXT NOT NULL,
    deputy_id      TEXT NOT NULL,
    suggestion_id  TEXT NOT NULL,
    kind           TEXT NOT NULL,
    language       TEXT NOT NULL,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    read_at        BIGINT,
    UNIQUE (source_event, deputy_id, kind)
);
CREATE INDEX notify_notifications_deputy ON notify_notifications (deputy_id, created_at);

-- A delivery by e-mail or SMS: pending (retried with backoff), sent, failed (gave up) or
-- undeliverable (no address, or the channel is not configured), with its outcome.
-- The message's text and the deputy's quiet hours are copied in when it is queued.
CREATE TABLE notify_deliveries (
    notification_id  TEXT NOT NULL,
    channel          TEXT NOT NULL,
    deputy_id        TEXT NOT NULL,
    suggestion_id    TEXT NOT NULL,
    state            TEXT NOT NULL,
    address          TEXT,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    quiet_from       TEXT,
    quiet_to         TEXT,
    attempts         BIGINT NOT NULL,
    next_at          BIGINT NOT NULL,
    lease_until      BIGINT,
    last_error       TEXT,
    sent_at          BIGINT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (state, next_at);
CREATE INDEX notify_deliveries_deputy ON notify_deliveries (deputy_id, created_at);
