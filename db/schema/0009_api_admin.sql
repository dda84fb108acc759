-- Administration through the ops API: hashed API tokens, alert subscribers, one audit trail
-- of every administrative change, and retirement of stations and sensors (history is kept).

-- API tokens. Only the SHA-256 of a token is stored (tokens are 256-bit random strings, so a
-- fast unsalted hash is the right tool: nothing to brute-force); `prefix` is the token's
-- first characters, for people to tell tokens apart. A rotation makes a new row and points
-- the old one at it; a revoked or expired token authenticates nobody.
CREATE TABLE api_tokens (
    token_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    scope_domains text[] CHECK (scope_domains <@ ARRAY['air', 'water', 'flood', 'traffic']),
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    revoked_by    text,
    replaced_by   bigint REFERENCES api_tokens,
    last_used_at  timestamptz
);

-- Alert subscribers (webhook receivers such as the environment department). The signing
-- secret is never stored: it is derived from the server's API_SECRET_KEY and this row's
-- random `secret_salt` (HMAC-SHA256), shown once when made or rotated; `secret_hash` is its
-- SHA-256, to check that the key has not changed since.
CREATE TABLE alert_subscribers (
    subscriber_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    url            text NOT NULL CHECK (url ~ '^https?://'),
    domains        text[] CHECK (domains <@ ARRAY['air', 'water', 'flood', 'traffic']),
    min_severity   text NOT NULL DEFAULT 'info'
                   CHECK (min_severity IN ('info', 'minor', 'moderate', 'severe', 'extreme')),
    districts      text[],
    enabled        boolean NOT NULL DEFAULT true,
    secret_salt    bytea NOT NULL CHECK (length(secret_salt) = 16),
    secret_hash    bytea NOT NULL CHECK (length(secret_hash) = 32),
    secret_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text NOT NULL
);

-- Every administrative change (tokens, subscribers, stations), who made it and what changed;
-- never a secret. Append-only for the API.
CREATE TABLE admin_audit (
    audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    target_kind text NOT NULL CHECK (target_kind IN ('token', 'subscriber', 'station')),
    target_id   text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX admin_audit_target ON admin_audit (target_kind, target_id, audit_id);

-- Retired stations and sensors stay (their readings and alerts refer to them) but are no
-- longer in the registry: ingest refuses their messages, the API no longer lists them.
ALTER TABLE stations ADD COLUMN retired_at timestamptz;
ALTER TABLE sensors ADD COLUMN retired_at timestamptz;

CREATE OR REPLACE VIEW latest_readings AS
SELECT s.station_id, st.domain, st.district, s.quantity, s.unit, s.sensor_id,
       l.time, l.value, l.quality, l.received_at
FROM latest l
JOIN sensors s USING (sensor_id)
JOIN stations st USING (station_id)
WHERE s.retired_at IS NULL AND st.retired_at IS NULL;
