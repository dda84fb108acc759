-- Webhooks: a durable outbox of alert events, one row per (subscriber, event), written by a
-- trigger in the very transaction that records the event — processing's transitions and the
-- operators' alike — so an event is committed with its deliveries or not at all. The webhook
-- dispatcher (webhooks/) claims due rows, POSTs them signed, and records the outcome.
--
-- Who gets what: an enabled subscriber whose domains and districts admit the alert (NULL:
-- every one), for alerts of the 'event' category only (sensor-health and operations alerts
-- never leave the operations centre), from the first event at which the alert reached the
-- subscriber's minimum severity onwards — so a subscriber that saw an alert also sees it
-- drop back and clear. Rules that are not public hazards (processing's RuleSpec.public) are
-- withheld by the dispatcher, which knows the rule registry.
--
-- status: pending (due at next_attempt_at; a claim leases it by moving next_attempt_at),
-- delivered (2xx), dead (gave up: too old or too many attempts; an admin may redeliver),
-- withheld (never sent: not a public rule). One delivery id per row, kept across attempts
-- and redeliveries: receivers deduplicate on it. queued_at starts the current series of
-- attempts (creation, or an admin's redelivery): its age decides when to give up.
-- leased_until: an attempt is in flight until then (a claim's lease).

CREATE TABLE webhook_outbox (
    delivery_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subscriber_id   bigint NOT NULL REFERENCES alert_subscribers ON DELETE CASCADE,
    event_id        bigint NOT NULL,
    alert_id        bigint NOT NULL,
    rule            text NOT NULL,
    snapshot        jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead', 'withheld')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    queued_at       timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    leased_until    timestamptz,
    last_status     smallint,
    last_error      text,
    finished_at     timestamptz,
    CONSTRAINT webhook_outbox_once UNIQUE (subscriber_id, event_id)
);
-- Due work, and each (subscriber, alert) queue's head: what a claim reads.
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_outbox_queue ON webhook_outbox (subscriber_id, alert_id, event_id)
    WHERE status = 'pending';
-- Listing (dead letters first of all) and pruning.
CREATE INDEX webhook_outbox_status ON webhook_outbox (status, created_at);

CREATE FUNCTION hanoi_severity_rank(severity text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE severity WHEN 'info' THEN 0 WHEN 'minor' THEN 1 WHEN 'moderate' THEN 2
                         WHEN 'severe' THEN 3 WHEN 'extreme' THEN 4 END
$$;

-- The alert row is written before its event by every writer (processing.alerts.sink), so the
-- snapshot is the alert as this event left it.
CREATE FUNCTION hanoi_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    a alerts%ROWTYPE;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM alert_subscribers WHERE enabled) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO a FROM alerts WHERE alert_id = NEW.alert_id;
    IF NOT FOUND OR a.category <> 'event' THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_outbox (subscriber_id, event_id, alert_id, rule, snapshot)
    SELECT s.subscriber_id, NEW.event_id, NEW.alert_id, a.rule,
           jsonb_build_object('alert', to_jsonb(a), 'event', to_jsonb(NEW))
    FROM alert_subscribers s
    WHERE s.enabled
      AND (s.domains IS NULL OR a.domain = ANY (s.domains))
      AND (s.districts IS NULL OR a.district = ANY (s.districts))
      -- the alert is at the subscriber's severity now, or was at some earlier event
      AND (hanoi_severity_rank(s.min_severity) <= hanoi_severity_rank(a.severity)
           OR EXISTS (SELECT 1 FROM alert_events e
                      WHERE e.alert_id = NEW.alert_id
                        AND hanoi_severity_rank(e.severity) >= hanoi_severity_rank(s.min_severity)))
    ON CONFLICT ON CONSTRAINT webhook_outbox_once DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER alert_events_webhooks AFTER INSERT ON alert_events
FOR EACH ROW EXECUTE FUNCTION hanoi_webhook_outbox();

-- Redeliveries are administrative changes, audited like the others.
ALTER TABLE admin_audit DROP CONSTRAINT admin_audit_target_kind_check;
ALTER TABLE admin_audit ADD CONSTRAINT admin_audit_target_kind_check
    CHECK (target_kind IN ('token', 'subscriber', 'station', 'delivery'));
