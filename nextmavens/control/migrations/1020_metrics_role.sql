-- The metrics collector's own role (issue 18): no superuser, and on this database only what the collector does:
-- read which projects are live (org, ref, destroyed_at: no other column), write the metric tiers (insert, roll up,
-- prune), and store the alerts it raises; uptime history too, for the uptime check. Nothing on secrets, api_keys,
-- tokens, members or the audit log. The deploy (tasks/platform.py, after the apply) gives it LOGIN and its password; created here too
-- (NOLOGIN) so the grants hold wherever the control database is migrated. The name is
-- nextmavens.naming.METRICS_ROLE.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nextmavens_metrics') THEN
        CREATE ROLE nextmavens_metrics NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO nextmavens_metrics', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO nextmavens_metrics;
GRANT SELECT ON schema_migrations TO nextmavens_metrics;  -- connect_control's check that nothing is pending
GRANT SELECT (org, ref, destroyed_at) ON projects TO nextmavens_metrics;
GRANT SELECT, INSERT ON metric_scopes, metric_series, metric_raw TO nextmavens_metrics;
GRANT SELECT, INSERT, UPDATE, DELETE ON metric_5m, metric_1h TO nextmavens_metrics;
GRANT DELETE ON metric_raw TO nextmavens_metrics;
GRANT SELECT, INSERT, UPDATE ON metric_rollups TO nextmavens_metrics;
GRANT SELECT, INSERT, UPDATE ON uptime_days TO nextmavens_metrics;
GRANT SELECT, INSERT ON uptime_events, alerts TO nextmavens_metrics;
GRANT USAGE ON SEQUENCE metric_scopes_id_seq, metric_series_id_seq, uptime_events_id_seq, alerts_id_seq
    TO nextmavens_metrics;

-- A project database's size: pg_database_size needs CONNECT on that database (projects' are not PUBLIC's) or
-- pg_read_all_stats, which would also show every session's query text. This function, run as its owner (the
-- admin that migrates), returns only the sizes of the databases named.
CREATE FUNCTION metric_database_sizes(names text[]) RETURNS TABLE (datname name, size_bytes bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT d.datname, pg_database_size(d.oid) FROM pg_database d WHERE d.datname = ANY(names) $$;
REVOKE ALL ON FUNCTION metric_database_sizes(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metric_database_sizes(text[]) TO nextmavens_metrics;
