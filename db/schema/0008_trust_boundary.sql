-- The trust boundary (docs/security.md): a station's current state follows the order in
-- which accepted status messages arrived, not the time a device claims; refused messages
-- keep a bounded prefix with their full size and SHA-256, once per distinct message, and
-- every refusal is counted exactly per publisher and minute.

-- 1. Device status: arrival decides the current state. `at` stays what the device said
--    (its own time, within the accepted window, or the arrival of an untimed last will).
ALTER TABLE sensor_status ADD COLUMN received_at timestamptz;
UPDATE sensor_status SET received_at = least(at, recorded_at);
ALTER TABLE sensor_status ALTER COLUMN received_at SET DEFAULT now();
ALTER TABLE sensor_status ALTER COLUMN received_at SET NOT NULL;
ALTER TABLE sensor_status ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX sensor_status_arrival ON sensor_status (station_id, received_at DESC, seq DESC);

CREATE OR REPLACE VIEW station_state AS
SELECT DISTINCT ON (station_id) station_id, state, received_at AS since, reason,
       at AS reported_at
FROM sensor_status
ORDER BY station_id, received_at DESC, seq DESC;

-- 2. Quarantine rows: a prefix of payload and topic, their sizes and the payload's digest;
--    one row per distinct (bytes, topic, reason, service) until replayed, its copies counted.
ALTER TABLE quarantine
    ADD COLUMN payload_size     integer,
    ADD COLUMN payload_sha256   bytea,
    ADD COLUMN topic_size       integer,
    ADD COLUMN copies           integer NOT NULL DEFAULT 1,
    ADD COLUMN last_received_at timestamptz,
    ADD COLUMN service          text NOT NULL DEFAULT 'ingest';
UPDATE quarantine SET payload_size = length(payload), payload_sha256 = sha256(payload),
                      topic_size = octet_length(topic);
ALTER TABLE quarantine ALTER COLUMN payload_size SET NOT NULL;
ALTER TABLE quarantine ALTER COLUMN payload_sha256 SET NOT NULL;
ALTER TABLE quarantine ALTER COLUMN topic_size SET NOT NULL;

-- Rows stored before this migration may repeat a message: fold them into one.
WITH ranked AS (
    SELECT quarantine_id,
           first_value(quarantine_id) OVER w AS keep,
           count(*) OVER w AS n,
           max(received_at) OVER w AS last
    FROM quarantine WHERE replayed_at IS NULL
    WINDOW w AS (PARTITION BY payload_sha256, topic, reason, service ORDER BY quarantine_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), kept AS (
    UPDATE quarantine q SET copies = r.n, last_received_at = r.last
    FROM ranked r WHERE q.quarantine_id = r.quarantine_id AND r.keep = r.quarantine_id
      AND r.n > 1
)
DELETE FROM quarantine q USING ranked r
WHERE q.quarantine_id = r.quarantine_id AND r.keep <> r.quarantine_id;

CREATE UNIQUE INDEX quarantine_once ON quarantine (payload_sha256, md5(topic), reason, service)
    WHERE replayed_at IS NULL;

-- A row written without them (by hand, by an older writer) describes a whole payload.
CREATE FUNCTION quarantine_sizes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.payload_size := coalesce(NEW.payload_size, length(NEW.payload));
    NEW.payload_sha256 := coalesce(NEW.payload_sha256, sha256(NEW.payload));
    NEW.topic_size := coalesce(NEW.topic_size, octet_length(NEW.topic));
    RETURN NEW;
END $$;
CREATE TRIGGER quarantine_sizes BEFORE INSERT ON quarantine
    FOR EACH ROW EXECUTE FUNCTION quarantine_sizes();

-- 3. The exact tally of every refusal, kept or not, per publisher (the topic's station level,
--    which the broker's ACL ties to one device or its gateway), reason and minute.
CREATE TABLE quarantine_counts (
    window_start timestamptz NOT NULL,
    publisher    text NOT NULL,
    reason       text NOT NULL,
    service      text NOT NULL DEFAULT 'ingest',
    messages     bigint NOT NULL,
    readings     bigint NOT NULL,
    bytes        bigint NOT NULL,
    sampled      bigint NOT NULL,
    PRIMARY KEY (window_start, publisher, reason, service)
);
