-- hanoi:no-transaction
-- TimescaleDB strategy (2.28+ on PostgreSQL 15, 2.29+ on 16-18): hypertable with daily chunks,
-- columnstore after 7 days, retention policy, continuous aggregates with real-time
-- aggregation. Continuous aggregates cannot be created inside a transaction block, so the
-- runner executes this file statement by statement in autocommit mode and records it only
-- when every statement succeeded; each statement is written to be re-runnable after a
-- failed first run (the ALTER … SET below is, as long as no chunk is compressed yet, which
-- the 7-day columnstore policy guarantees for a fresh table).
CREATE TABLE IF NOT EXISTS readings (
    time        timestamptz NOT NULL,
    sensor_id   integer NOT NULL,
    value       double precision NOT NULL,
    quality     smallint NOT NULL DEFAULT 0,
    received_at timestamptz NOT NULL,
    CONSTRAINT readings_key UNIQUE (time, sensor_id)
);
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'),
                         create_default_indexes => false, if_not_exists => true);
ALTER TABLE readings SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'sensor_id',
    timescaledb.orderby = 'time DESC'
);
CALL add_columnstore_policy('readings', after => INTERVAL '7 days', if_not_exists => true);
SELECT add_retention_policy('readings', drop_after => INTERVAL '400 days', if_not_exists => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, sensor_id,
       avg(value) AS avg, min(value) AS min, max(value) AS max, count(*)::integer AS n
FROM readings
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_1m',
    start_offset => INTERVAL '3 hours', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute', if_not_exists => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, sensor_id,
       avg(value) AS avg, min(value) AS min, max(value) AS max, count(*)::integer AS n
FROM readings
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_1h',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
SELECT add_retention_policy('readings_1m', drop_after => INTERVAL '90 days', if_not_exists => true);
