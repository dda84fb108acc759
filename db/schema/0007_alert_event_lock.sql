-- The event-order lock (0004) gets one home: hanoi_lock_alert_events(). Every writer of
-- alert rows (processing.alerts.sink, for processing's transitions and the operators')
-- takes it first, before any row lock, so writers never wait for each other in a cycle;
-- the trigger still takes it for any other writer of alert_events.
CREATE OR REPLACE FUNCTION hanoi_lock_alert_events() RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtext('alert_events'))
$$;
CREATE OR REPLACE FUNCTION hanoi_order_alert_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hanoi_lock_alert_events();
    RETURN NULL;
END $$;
