-- Metrics with history (issue 18): compact, downsampled, bounded by retention (nextmavens/metrictiers.py says how
-- long each tier is kept; nextmavens/control/store/metrics.py holds every query on these tables).
-- A scope is 'host' or a project 'org/ref'; a series is one measured quantity of a scope ('cpu_pct:rest').
CREATE TABLE metric_scopes (
    id    smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name  text NOT NULL UNIQUE
);

CREATE TABLE metric_series (
    id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope  smallint NOT NULL REFERENCES metric_scopes (id),
    name   text NOT NULL,
    UNIQUE (scope, name)
);

-- Raw samples (48 h): one row per scope per minute, the series ids and their values in the same order.
-- Insert-only, written once a minute in one batch.
CREATE TABLE metric_raw (
    scope   smallint NOT NULL,
    ts      integer NOT NULL,  -- unix seconds of the minute
    series  integer[] NOT NULL,
    vals    real[] NOT NULL,
    PRIMARY KEY (scope, ts)
);

-- 5-minute averages and maxima (30 days): one row per series per hour, 12 slots (NULL: no sample).
CREATE TABLE metric_5m (
    series  integer NOT NULL,
    hour    integer NOT NULL,  -- unix seconds of the hour
    avg     real[] NOT NULL,
    max     real[] NOT NULL,
    PRIMARY KEY (series, hour)
);

-- Hourly averages and maxima (a year): one row per series per day, 24 slots.
CREATE TABLE metric_1h (
    series  integer NOT NULL,
    day     integer NOT NULL,  -- unix seconds of the UTC day
    avg     real[] NOT NULL,
    max     real[] NOT NULL,
    PRIMARY KEY (series, day)
);

-- How far each downsampled tier is complete: everything before done_until is rolled up (never pruned before).
CREATE TABLE metric_rollups (
    tier        text PRIMARY KEY,
    done_until  integer NOT NULL
);

-- The platform service reads metrics for GET /v1/projects/{org}/{ref}/metrics.
GRANT SELECT ON metric_scopes, metric_series, metric_raw, metric_5m, metric_1h, metric_rollups TO nextmavens_platform;

-- Retention deletes by time: block-range indexes, a few pages each (rows arrive in time order).
CREATE INDEX metric_raw_ts ON metric_raw USING brin (ts);
CREATE INDEX metric_5m_hour ON metric_5m USING brin (hour);
CREATE INDEX metric_1h_day ON metric_1h USING brin (day);
