-- Marquez's `GET /api/v1/events/lineage`: run events by event time, a page at a time, either way.
CREATE INDEX lineage_events_by_time ON lineage_events (event_time, id) WHERE run_id IS NOT NULL;
