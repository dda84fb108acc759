-- Detector state snapshots, so a redeployed processing instance resumes without a cold start.
CREATE TABLE processing_state (
    instance text PRIMARY KEY,
    saved_at timestamptz NOT NULL,
    version  integer NOT NULL,
    state    bytea NOT NULL
);
