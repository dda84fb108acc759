-- `latest` is updated in place by every batch (one row per sensor seen). With free space left
-- in each page the update is HOT (no index entry, no new page), which made the whole batch
-- write about a quarter faster in benchmarks/bench_ingest.py's baseline (docs/performance.md).
-- Frequent small vacuums keep the dead versions from piling up between batches.
ALTER TABLE latest SET (
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_vacuum_threshold = 1000
);
