-- Uptime checks and alerts (issue 18; queries in nextmavens/control/store/monitoring.py).
-- A target is one public name of a project: its API name, a custom domain, its app (auth.site_url).
CREATE TABLE uptime_days (
    scope   text NOT NULL,     -- org/ref
    kind    text NOT NULL,     -- api | domain | app
    name    text NOT NULL,     -- the host name checked
    day     date NOT NULL,     -- UTC
    checks  integer NOT NULL,
    up      integer NOT NULL,
    PRIMARY KEY (scope, kind, name, day)
);

-- Each change of a target's state (the first failure after a success, the recovery): the outage history.
CREATE TABLE uptime_events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope   text NOT NULL,
    kind    text NOT NULL,
    name    text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    ok      boolean NOT NULL,
    detail  text NOT NULL
);
CREATE INDEX uptime_events_target ON uptime_events (scope, kind, name, at DESC);

-- Alerts the monitors raised (uptime changes, a rise of 5xx), as sent to Telegram: the dashboard lists them.
CREATE TABLE alerts (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    kind     text NOT NULL,    -- uptime | errors
    scope    text NOT NULL,    -- org/ref, or host
    title    text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}',
    sent     boolean NOT NULL  -- delivered to Telegram (false: stderr only, or delivery failed)
);
CREATE INDEX alerts_scope_at ON alerts (scope, at DESC);

GRANT SELECT ON uptime_days, uptime_events, alerts TO nextmavens_platform;
