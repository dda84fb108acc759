-- Operations alerts: the system's own health (a storage job stuck, processing falling behind),
-- for the operations centre's on-call engineer; they name no station.
ALTER TABLE alerts DROP CONSTRAINT alerts_category_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_category_check
    CHECK (category IN ('event', 'sensor_health', 'operations'));
