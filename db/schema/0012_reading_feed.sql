-- The reading feed: what ingest stored, in commit order, for processing to decide on.
--
-- Processing used to hold its own MQTT subscription; a broker queue that overflowed, or a
-- restart under load, made it miss readings without a trace. Now every ingest transaction
-- that stores readings also appends them, as three arrays, to this feed under a number
-- taken from feed_head as its last step: the row lock on feed_head is held until commit,
-- so numbers are committed in order and without gaps (a rolled-back batch rolls its number
-- back too). The columns are packed little-endian arrays (float64 epoch seconds, int32
-- sensor keys, float64 values): written and read as one buffer each, no per-element
-- conversion on either side. A consumer reads the feed after its durable position (feed_positions, moved
-- in the same transaction as its decisions), so every stored reading is decided exactly
-- once, whatever the broker, the network or a restart did. Rows every consumer has passed,
-- and rows older than the feed's retention, are pruned by ingest's upkeep.
CREATE TABLE feed_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL
);
INSERT INTO feed_head VALUES (true, 0);

CREATE TABLE reading_feed (
    seq          bigint PRIMARY KEY,
    committed_at timestamptz NOT NULL DEFAULT now(),
    received_at  timestamptz NOT NULL,
    readings     integer NOT NULL,
    times        bytea NOT NULL,
    sensor_keys  bytea NOT NULL,
    values_      bytea NOT NULL,
    CHECK (octet_length(times) = 8 * readings AND octet_length(sensor_keys) = 4 * readings
           AND octet_length(values_) = 8 * readings)
);

CREATE TABLE feed_positions (
    consumer   text PRIMARY KEY,
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The detector snapshot records the feed position it was taken at (replayed from there).
ALTER TABLE processing_state ADD COLUMN position bigint;
