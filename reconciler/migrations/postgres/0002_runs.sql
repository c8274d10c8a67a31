-- Runs gain their conf and creation time, and indexes for the run list and the run follower
-- (keep in step with ../sqlite/0002_runs.sql).

ALTER TABLE runs
    ADD COLUMN conf       JSONB       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(conf) = 'object'),
    ADD COLUMN created_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- A run recorded before this migration was created no later than it started.
UPDATE runs SET created_at = coalesce(started_at, updated_at);

-- The run list: newest first by id, filtered by workspace, job or state.
CREATE INDEX runs_by_workspace_id ON runs (workspace, id DESC);
CREATE INDEX runs_by_job_id ON runs (workspace, job, id DESC);
CREATE INDEX runs_by_state_id ON runs (state, id DESC);

-- The runs still to follow in Airflow. The list of terminal states is the one of
-- `is_terminal_run_state` (store/mod.rs).
CREATE INDEX runs_active ON runs (id) WHERE state NOT IN ('success', 'failed');
