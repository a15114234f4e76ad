-- Backups to Telegram (nextmavens.backup). A backup is 'complete' only once every chunk is uploaded and
-- recorded with its checksum; 'failed' ones had their uploaded messages deleted (or say why not).
CREATE TABLE backups (
    id            bigserial PRIMARY KEY,
    target        text NOT NULL,            -- ORG/PROJECT, or '_platform/control' for the control database
    database      text NOT NULL,
    kind          text NOT NULL DEFAULT 'scheduled',  -- scheduled | manual | pre-replace | verify
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'complete', 'failed', 'expired')),
    recipient     text NOT NULL,            -- the operator's age public key it is encrypted to
    drill_recipient text,                   -- verify drills only: an extra, ephemeral recipient whose
                                            -- private half lived only for the drill
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    chunk_count   integer,
    total_bytes   bigint,
    db_owner      text,
    table_stats   jsonb,                    -- per-table row count and checksum in the dump's snapshot
    error         text,
    expired_at    timestamptz,
    cleanup_error text,                     -- messages that could not be deleted, and why
    pid           integer,
    CHECK (status <> 'complete' OR (chunk_count IS NOT NULL AND finished_at IS NOT NULL))
);
CREATE INDEX backups_target_started ON backups (target, started_at DESC);

CREATE TABLE backup_chunks (
    backup_id       bigint NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
    seq             integer NOT NULL,
    message_id      bigint NOT NULL,
    file_id         text NOT NULL,
    file_unique_id  text,
    size            bigint NOT NULL,
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    uploaded_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    PRIMARY KEY (backup_id, seq)
);

CREATE TABLE backup_verifications (
    id            bigserial PRIMARY KEY,
    backup_id     bigint REFERENCES backups (id) ON DELETE SET NULL,
    target        text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    ok            boolean,
    tables        integer,
    mismatches    jsonb NOT NULL DEFAULT '[]',
    seconds       double precision,
    error         text
);
CREATE INDEX backup_verifications_target ON backup_verifications (target, started_at DESC);
