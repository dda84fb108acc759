-- Station/sensor registry, device status history, quarantine. Same on both strategies.
CREATE TABLE stations (
    station_id    text PRIMARY KEY,
    domain        text NOT NULL CHECK (domain IN ('air', 'water', 'flood', 'traffic')),
    name          text NOT NULL,
    district      text NOT NULL,
    lat           double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon           double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    kind          text NOT NULL,
    attributes    jsonb NOT NULL DEFAULT '{}'::jsonb,
    registered_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One sensor = one (station, quantity). The integer id keeps the readings key narrow.
CREATE TABLE sensors (
    sensor_id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station_id  text NOT NULL REFERENCES stations ON DELETE CASCADE,
    quantity    text NOT NULL,
    unit        text NOT NULL,
    interval_s  double precision NOT NULL CHECK (interval_s > 0),
    valid_min   double precision,
    valid_max   double precision,
    UNIQUE (station_id, quantity)
);

-- Device status is history: every transition is a row (online / offline / stale).
CREATE TABLE sensor_status (
    station_id  text NOT NULL REFERENCES stations ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    state       text NOT NULL CHECK (state IN ('online', 'offline', 'stale')),
    reason      text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, at, state)
);

CREATE VIEW station_state AS
SELECT DISTINCT ON (station_id) station_id, state, at AS since, reason
FROM sensor_status
ORDER BY station_id, at DESC, recorded_at DESC;

-- Everything refused, with the raw bytes so it can be replayed after a fix.
CREATE TABLE quarantine (
    quarantine_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at    timestamptz NOT NULL,
    topic          text NOT NULL,
    client_id      text,
    payload        bytea NOT NULL,
    reason         text NOT NULL,
    detail         text NOT NULL,
    station_id     text,
    quantity       text,
    readings       integer NOT NULL DEFAULT 1,
    replayed_at    timestamptz,
    replay_outcome text
);
CREATE INDEX quarantine_received ON quarantine (received_at);
CREATE INDEX quarantine_reason ON quarantine (reason) WHERE replayed_at IS NULL;

-- Liveness and counters of every running service instance (read by the ops API).
CREATE TABLE service_heartbeats (
    service    text NOT NULL,
    instance   text NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL,
    stats      jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (service, instance)
);
