-- The dashboard's members (all queries: nextmavens.control.store.members). A member is the lower-case email an
-- org.yaml lists; their roles stay in orgs.members. Passwords are argon2id hashes; the TOTP secret is sealed with
-- the control master key (AES-GCM, context "member-totp/<email>"); invite links and session cookies are kept only
-- as the SHA-256 of their random text.
CREATE TABLE member_credentials (
    member          text PRIMARY KEY,
    password_hash   text,                     -- NULL until the member sets one through an invite link
    totp_nonce      bytea,
    totp_ciphertext bytea,                    -- NULL: no second factor
    failed_signins  integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((totp_nonce IS NULL) = (totp_ciphertext IS NULL))
);

CREATE TABLE member_invites (
    id          text PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    member      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX member_invites_member ON member_invites (member);

CREATE TABLE dashboard_sessions (
    id            text PRIMARY KEY,           -- public name (audit rows); no part of the cookie
    secret_hash   text NOT NULL UNIQUE CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    member        text NOT NULL,
    verified      boolean NOT NULL DEFAULT false,  -- false: the password passed, the TOTP code is still due
    address       text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,       -- absolute expiry; the idle limit is the service's setting
    revoked_at    timestamptz
);
CREATE INDEX dashboard_sessions_member ON dashboard_sessions (member);

GRANT SELECT, INSERT ON member_credentials TO nextmavens_platform;
GRANT UPDATE (password_hash, totp_nonce, totp_ciphertext, failed_signins, locked_until, updated_at)
    ON member_credentials TO nextmavens_platform;
GRANT SELECT ON member_invites TO nextmavens_platform;
GRANT UPDATE (used_at) ON member_invites TO nextmavens_platform;
GRANT SELECT, INSERT ON dashboard_sessions TO nextmavens_platform;
GRANT UPDATE (verified, last_seen_at, revoked_at) ON dashboard_sessions TO nextmavens_platform;
-- The project page's last restore drill.
GRANT SELECT ON backup_verifications TO nextmavens_platform;
