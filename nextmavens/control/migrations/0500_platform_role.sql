-- The platform service's own role: no superuser, and on this database only what the service does (read tokens,
-- members, projects, sealed secrets, backups; write tokens, audit rows, and a key rotation's sealed secret, key
-- records, key times and run record). Per table and column, so a new table is never granted by default; the
-- deploy (tasks/platform.py) gives the role LOGIN and its password. Created here too (NOLOGIN) so the grants hold
-- wherever the control database is migrated. The name is nextmavens.naming.PLATFORM_ROLE.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nextmavens_platform') THEN
        CREATE ROLE nextmavens_platform NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO nextmavens_platform', current_database());
END
$$;

-- Only superusers and the service's role connect here; neither needs PUBLIC's CREATE on the schema.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO nextmavens_platform;

GRANT SELECT ON schema_migrations TO nextmavens_platform;  -- the check at open that nothing is pending
GRANT SELECT ON orgs, backups TO nextmavens_platform;
GRANT SELECT, INSERT ON access_tokens TO nextmavens_platform;
GRANT UPDATE (last_used_at, revoked_at) ON access_tokens TO nextmavens_platform;
GRANT SELECT, INSERT ON audit_log TO nextmavens_platform;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO nextmavens_platform;
-- A key rotation (under the apply lock, recorded as a run).
GRANT SELECT ON projects TO nextmavens_platform;
GRANT UPDATE (keys_issued_at, keys_expires_at) ON projects TO nextmavens_platform;
GRANT SELECT, INSERT ON secrets TO nextmavens_platform;
GRANT UPDATE (nonce, ciphertext, created_at) ON secrets TO nextmavens_platform;
GRANT SELECT, INSERT ON api_keys TO nextmavens_platform;
GRANT UPDATE (revoked_at) ON api_keys TO nextmavens_platform;
GRANT USAGE ON SEQUENCE api_keys_id_seq TO nextmavens_platform;
GRANT SELECT, INSERT ON apply_runs TO nextmavens_platform;
GRANT UPDATE (finished_at, result, error) ON apply_runs TO nextmavens_platform;
GRANT USAGE ON SEQUENCE apply_runs_id_seq TO nextmavens_platform;
