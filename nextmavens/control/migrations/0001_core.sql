-- Core control tables. Applied once by nextmavens.control.db.migrate; never edit an applied file,
-- add a new one instead.
CREATE TABLE orgs (
    slug        text PRIMARY KEY,
    name        text,
    members     jsonb NOT NULL DEFAULT '[]',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    ref              text PRIMARY KEY,
    org              text NOT NULL,
    name             text NOT NULL,
    state            text NOT NULL,
    manifest_path    text,
    keys_issued_at   bigint,
    layer_version    integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_applied_at  timestamptz,
    destroyed_at     timestamptz
);

-- One row per secret value, AES-GCM encrypted under the master key; the (scope, name) pair is bound
-- into the ciphertext as associated data so rows cannot be swapped.
CREATE TABLE secrets (
    scope       text NOT NULL,      -- a project ref, or '_cluster' for platform-wide secrets
    name        text NOT NULL,      -- e.g. 'jwt_secret', 'password:owner_shop', 'verifier:owner_shop'
    nonce       bytea NOT NULL,
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, name)
);

-- API keys ever issued; keys are not stored here, only a fingerprint to recognise a revoked one.
CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    ref          text NOT NULL,
    role         text NOT NULL,
    issued_at    bigint NOT NULL,
    fingerprint  text NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_ref ON api_keys (ref);

CREATE TABLE apply_runs (
    id           bigserial PRIMARY KEY,
    command      text NOT NULL,
    actor        text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    result       text NOT NULL DEFAULT 'running',   -- running | ok | failed
    changes      jsonb NOT NULL DEFAULT '[]',
    error        text
);
