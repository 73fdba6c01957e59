-- Units' contacts (联络员) hear of what their unit must do, as deputies hear of their items:
-- every message, delivery and preference now belongs to a recipient, a deputy or an agency
-- (its contact). The rows written before are deputies'.
ALTER TABLE notify_notifications RENAME COLUMN deputy_id TO recipient_id;
ALTER TABLE notify_notifications ADD COLUMN recipient_kind TEXT NOT NULL DEFAULT 'deputy';
ALTER TABLE notify_deliveries RENAME COLUMN deputy_id TO recipient_id;
ALTER TABLE notify_deliveries ADD COLUMN recipient_kind TEXT NOT NULL DEFAULT 'deputy';
ALTER TABLE notify_preferences RENAME COLUMN deputy_id TO recipient_id;
ALTER TABLE notify_preferences ADD COLUMN recipient_kind TEXT NOT NULL DEFAULT 'deputy';
