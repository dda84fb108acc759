-- "Latest value" by measurement time, maintained per batch (never by scanning readings).
CREATE TABLE latest (
    sensor_id   integer PRIMARY KEY,
    time        timestamptz NOT NULL,
    value       double precision NOT NULL,
    quality     smallint NOT NULL,
    received_at timestamptz NOT NULL
);

CREATE VIEW latest_readings AS
SELECT s.station_id, st.domain, st.district, s.quantity, s.unit, s.sensor_id,
       l.time, l.value, l.quality, l.received_at
FROM latest l
JOIN sensors s USING (sensor_id)
JOIN stations st USING (station_id);

-- Derived series: official indices, levels, nowcasts (computed live by processing).
CREATE TABLE indices (
    time       timestamptz NOT NULL,
    station_id text NOT NULL,
    index      text NOT NULL,
    value      double precision,
    level      text,
    dominant   text,
    details    jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT indices_key UNIQUE (time, station_id, index)
);
CREATE INDEX indices_station ON indices (station_id, index, time DESC);

CREATE TABLE incidents (
    incident_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_key   text NOT NULL,
    title_vi    text NOT NULL,
    title_en    text NOT NULL,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz
);
CREATE UNIQUE INDEX incidents_open ON incidents (group_key) WHERE closed_at IS NULL;

-- Alerts are rows first (durable, monotonically increasing ids), then notifications.
CREATE TABLE alerts (
    alert_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key        text NOT NULL,
    rule             text NOT NULL,
    category         text NOT NULL CHECK (category IN ('event', 'sensor_health')),
    severity         text NOT NULL CHECK (severity IN ('info', 'minor', 'moderate', 'severe', 'extreme')),
    state            text NOT NULL CHECK (state IN ('raised', 'acknowledged', 'cleared')),
    station_id       text REFERENCES stations ON DELETE SET NULL,
    quantity         text,
    domain           text,
    district         text,
    title_vi         text NOT NULL,
    title_en         text NOT NULL,
    message_vi       text NOT NULL,
    message_en       text NOT NULL,
    value            double precision,
    threshold        double precision,
    observed_at      timestamptz NOT NULL,
    raised_at        timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    cleared_at       timestamptz,
    cleared_by       text,
    escalation_level smallint NOT NULL DEFAULT 0,
    incident_id      bigint REFERENCES incidents,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX alerts_open_dedup ON alerts (dedup_key) WHERE state <> 'cleared';
CREATE INDEX alerts_state ON alerts (state, severity, raised_at DESC);

-- The audit trail: every transition of every alert, in order.
CREATE TABLE alert_events (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    at       timestamptz NOT NULL DEFAULT now(),
    action   text NOT NULL CHECK (action IN
        ('raised', 'updated', 'acknowledged', 'cleared', 'escalated', 'commented', 'reopened')),
    actor    text NOT NULL,
    severity text,
    value    double precision,
    note     text
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, event_id);

-- NOTIFY fires at commit, so listeners only ever hear about committed events; the payload
-- is the event id and listeners read the row (payloads are limited to 8000 bytes).
CREATE FUNCTION hanoi_announce_alert_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alert_events', NEW.event_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER alert_events_announce AFTER INSERT ON alert_events
FOR EACH ROW EXECUTE FUNCTION hanoi_announce_alert_event();
