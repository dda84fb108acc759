-- Plain PostgreSQL strategy: daily range partitions made ahead, BRIN on time, rollup tables
-- refreshed incrementally, retention by detaching partitions.
CREATE TABLE readings (
    time        timestamptz NOT NULL,
    sensor_id   integer NOT NULL,
    value       double precision NOT NULL,
    quality     smallint NOT NULL DEFAULT 0,
    received_at timestamptz NOT NULL,
    -- Time first: the index then grows at its right edge and the ingest rate holds as the
    -- table grows (reference/performance.md §2b: 187k rows/s flat vs 80k decaying).
    CONSTRAINT readings_key UNIQUE (time, sensor_id)
) PARTITION BY RANGE (time);
CREATE INDEX readings_time_brin ON readings USING brin (time) WITH (pages_per_range = 32);

CREATE FUNCTION hanoi_ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date := first_day;
    made integer := 0;
    part text;
BEGIN
    WHILE day <= last_day LOOP
        part := format('readings_p%s', to_char(day, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                part, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            made := made + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN made;
END $$;

CREATE FUNCTION hanoi_drop_partitions(older_than date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'readings'::regclass
          AND c.relname ~ '^readings_p[0-9]{8}$'
          AND to_date(substr(c.relname, 11), 'YYYYMMDD') < older_than
    LOOP
        EXECUTE format('ALTER TABLE readings DETACH PARTITION %I', part.relname);
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

-- Rollups: materialised buckets below a watermark, raw aggregation above it (the view
-- imitates TimescaleDB's real-time aggregation). Late rows (backfill, redelivery) mark their
-- time range invalid; the next refresh recomputes it.
CREATE TABLE readings_1m_rollup (
    bucket timestamptz NOT NULL, sensor_id integer NOT NULL,
    avg double precision NOT NULL, min double precision NOT NULL,
    max double precision NOT NULL, n integer NOT NULL,
    PRIMARY KEY (sensor_id, bucket)
);
CREATE INDEX readings_1m_rollup_bucket ON readings_1m_rollup (bucket);
CREATE TABLE readings_1h_rollup (LIKE readings_1m_rollup INCLUDING ALL);

CREATE TABLE rollup_state (
    name      text PRIMARY KEY,
    watermark timestamptz NOT NULL
);
INSERT INTO rollup_state VALUES ('1m', '-infinity'), ('1h', '-infinity');

CREATE TABLE rollup_invalidations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lo timestamptz NOT NULL,
    hi timestamptz NOT NULL
);

CREATE FUNCTION hanoi_refresh_rollup(rollup text, width interval, upto timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    old_mark timestamptz;
    new_mark timestamptz := date_bin(width, upto, timestamptz '2000-01-01');
    lo timestamptz;
    hi timestamptz;
    n bigint := 0;
    k bigint;
    tbl text := format('readings_%s_rollup', rollup);
BEGIN
    SELECT watermark INTO old_mark FROM rollup_state WHERE name = rollup FOR UPDATE;
    IF old_mark = '-infinity' THEN
        SELECT date_bin(width, min(time), timestamptz '2000-01-01') INTO old_mark FROM readings;
        IF old_mark IS NULL THEN
            UPDATE rollup_state SET watermark = new_mark WHERE name = rollup;
            RETURN 0;
        END IF;
    END IF;
    -- Invalidated ranges below the old watermark, then the new span [old_mark, new_mark).
    FOR lo, hi IN
        SELECT date_bin(width, r.lo, timestamptz '2000-01-01'), least(r.hi + width, old_mark)
        FROM rollup_invalidations r WHERE r.lo < old_mark
        UNION ALL
        SELECT old_mark, new_mark WHERE new_mark > old_mark
    LOOP
        EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2', tbl) USING lo, hi;
        EXECUTE format(
            'INSERT INTO %I (bucket, sensor_id, avg, min, max, n)
             SELECT date_bin($3, time, timestamptz %L), sensor_id,
                    avg(value), min(value), max(value), count(*)
             FROM readings WHERE time >= $1 AND time < $2 GROUP BY 1, 2',
            tbl, '2000-01-01') USING lo, hi, width;
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
    END LOOP;
    UPDATE rollup_state SET watermark = greatest(new_mark, old_mark) WHERE name = rollup;
    RETURN n;
END $$;

CREATE FUNCTION hanoi_refresh_rollups(end_offset interval DEFAULT '1 minute')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    -- One refresher at a time; concurrent callers skip instead of queueing.
    IF NOT pg_try_advisory_xact_lock(hashtext('hanoi_refresh_rollups')) THEN
        RETURN 0;
    END IF;
    n := hanoi_refresh_rollup('1m', interval '1 minute', now() - end_offset)
       + hanoi_refresh_rollup('1h', interval '1 hour', now() - end_offset);
    DELETE FROM rollup_invalidations;
    RETURN n;
END $$;

CREATE VIEW readings_1m AS
SELECT r.bucket, r.sensor_id, r.avg, r.min, r.max, r.n
FROM readings_1m_rollup r
WHERE r.bucket < (SELECT watermark FROM rollup_state WHERE name = '1m')
UNION ALL
SELECT date_bin('1 minute', time, timestamptz '2000-01-01'), sensor_id,
       avg(value), min(value), max(value), count(*)::integer
FROM readings
WHERE time >= (SELECT watermark FROM rollup_state WHERE name = '1m')
GROUP BY 1, 2;

CREATE VIEW readings_1h AS
SELECT r.bucket, r.sensor_id, r.avg, r.min, r.max, r.n
FROM readings_1h_rollup r
WHERE r.bucket < (SELECT watermark FROM rollup_state WHERE name = '1h')
UNION ALL
SELECT date_bin('1 hour', time, timestamptz '2000-01-01'), sensor_id,
       avg(value), min(value), max(value), count(*)::integer
FROM readings
WHERE time >= (SELECT watermark FROM rollup_state WHERE name = '1h')
GROUP BY 1, 2;
