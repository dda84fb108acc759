-- Alert events must become visible in id order: a client resuming "after event N" would
-- otherwise miss an event whose smaller id committed after a larger one. Serialise writers
-- of alert_events for the rest of their transaction (cheap: alert transitions are rare).
-- The lock key is the one ops_api takes explicitly (ops_api.alert_queries.EVENT_ORDER_LOCK).
CREATE FUNCTION hanoi_order_alert_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('alert_events'));
    RETURN NULL;
END $$;
CREATE TRIGGER alert_events_in_order BEFORE INSERT ON alert_events
FOR EACH STATEMENT EXECUTE FUNCTION hanoi_order_alert_events();
