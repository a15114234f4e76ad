-- The platform service's access tokens and audit log (all queries: nextmavens.control.store.access).
-- A token is kept only as the SHA-256 of its text; its scope narrows the member's roles, which are read from
-- orgs.members (synced from org.yaml at apply) at every request, so a removed member's tokens stop working.
CREATE TABLE access_tokens (
    id            text PRIMARY KEY,
    token_hash    text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    member        text NOT NULL,              -- lower-case email, as listed in an org.yaml
    org           text,                       -- NULL: every org the member is in
    project       text,                       -- a project ref in `org`; NULL: the whole org (or orgs)
    read_only     boolean NOT NULL DEFAULT false,
    name          text NOT NULL DEFAULT '',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,                -- NULL: never
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    CHECK (project IS NULL OR org IS NOT NULL)
);
CREATE INDEX access_tokens_member ON access_tokens (member);

-- Every write and every refused call of the platform service (and the token commands): who, what, where,
-- the result. `detail` never holds a secret (no token, key or password).
CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    org      text,
    project  text,
    result   text NOT NULL,   -- ok | failed | forbidden | not_found | unauthenticated | invalid
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_org ON audit_log (org, id DESC);
