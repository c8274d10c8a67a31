-- The dashboard's queries: the newest audit entry of an action (the overview's last drift
-- repair), runs created since a time (the runs page's time filter), and failed runs since a time
-- (the overview's count).
CREATE INDEX audit_log_by_action ON audit_log (action, id DESC);
CREATE INDEX runs_by_created_at ON runs (created_at, id);
CREATE INDEX runs_by_state_created_at ON runs (state, created_at);
