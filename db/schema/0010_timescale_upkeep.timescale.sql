-- What the TimescaleDB strategy needs beyond its policies.
--
-- 1. Late and backfilled readings: the continuous-aggregate policies refresh only the last
--    3 hours (readings_1m) and 3 days (readings_1h), and real-time aggregation covers only
--    what lies above each aggregate's watermark, so rows written further back were neither
--    materialised nor aggregated on the fly. The writer queues the time range of every
--    batch that reaches behind the policies' windows; ingest's upkeep refreshes the queued
--    ranges (db.strategies.TimescaleStrategy.maintain) and empties the queue.
-- 2. The same partition function as plain PostgreSQL (a no-op: chunks are made on demand),
--    so tools and seeds need not ask which strategy they run on.
CREATE TABLE aggregate_refresh_queue (
    refresh_id bigserial PRIMARY KEY,
    lo         timestamptz NOT NULL,
    hi         timestamptz NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (lo <= hi)
);
CREATE FUNCTION hanoi_ensure_partitions(first date, last date) RETURNS integer
LANGUAGE sql AS $$ SELECT 0 $$;

-- 3. Policy jobs run in the foreground by the upkeep, when the background scheduler fails
--    (PostgreSQL 15.20: every background run is recorded failed) or falls behind: their
--    outcome, which TimescaleDB's own job statistics do not record.
CREATE TABLE storage_job_runs (
    job_id          integer PRIMARY KEY,
    last_run_at     timestamptz NOT NULL,
    last_success_at timestamptz,
    last_error      text,
    runs            bigint NOT NULL DEFAULT 0,
    failures        bigint NOT NULL DEFAULT 0
);
