-- API keys expire after a configurable lifetime (NEXTMAVENS_KEY_LIFETIME_DAYS). The expiry is recorded
-- when keys are issued, because it is part of the keys: a changed setting must not change issued keys.
-- NULL: keys issued before this migration, signed for ten years (nextmavens.keys.LEGACY_KEY_LIFETIME_S).
ALTER TABLE projects ADD COLUMN keys_expires_at bigint;
ALTER TABLE api_keys ADD COLUMN expires_at bigint;
