-- Runs gain their conf and creation time, and indexes for the run list and the run follower
-- (keep in step with ../postgres/0002_runs.sql).
--
-- SQLite's ALTER TABLE ADD COLUMN refuses a non-constant default, so `runs` is rebuilt. Its
-- child `task_instances` is set aside first: dropping the old `runs` would cascade to it.

CREATE TEMP TABLE task_instances_0002 AS SELECT * FROM task_instances;
DROP TABLE task_instances;

CREATE TABLE runs_0002 (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace      TEXT NOT NULL,
    job            TEXT NOT NULL,
    dag_id         TEXT NOT NULL,
    airflow_run_id TEXT NOT NULL,
    state          TEXT NOT NULL,
    "trigger"      TEXT NOT NULL CHECK ("trigger" IN ('api', 'commit', 'schedule')),
    triggered_by   TEXT,
    revision       TEXT,
    conf           TEXT NOT NULL DEFAULT '{}' CHECK (json_type(conf) = 'object'),
    logical_date   TEXT,
    started_at     TEXT,
    ended_at       TEXT,
    -- Now, in the one timestamp form (strftime's %f has three fractional digits).
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at     TEXT NOT NULL,
    UNIQUE (dag_id, airflow_run_id)
) STRICT;

-- A run recorded before this migration was created no later than it started.
INSERT INTO runs_0002 (id, workspace, job, dag_id, airflow_run_id, state, "trigger",
                       triggered_by, revision, logical_date, started_at, ended_at, created_at,
                       updated_at)
SELECT id, workspace, job, dag_id, airflow_run_id, state, "trigger", triggered_by, revision,
       logical_date, started_at, ended_at, coalesce(started_at, updated_at), updated_at
FROM runs;

-- Keep AUTOINCREMENT's high-water mark, so the id of a deleted run is never given again.
DELETE FROM sqlite_sequence WHERE name = 'runs_0002';
INSERT INTO sqlite_sequence (name, seq) SELECT 'runs_0002', seq FROM sqlite_sequence
WHERE name = 'runs';

DROP TABLE runs;
ALTER TABLE runs_0002 RENAME TO runs;

-- As in 0001_state.sql.
CREATE INDEX runs_by_started_at ON runs (started_at DESC, id DESC);
CREATE INDEX runs_by_workspace ON runs (workspace, started_at DESC, id DESC);
CREATE INDEX runs_by_job ON runs (workspace, job, started_at DESC, id DESC);
CREATE INDEX runs_by_state ON runs (state, started_at DESC, id DESC);

-- The run list: newest first by id, filtered by workspace, job or state.
CREATE INDEX runs_by_workspace_id ON runs (workspace, id DESC);
CREATE INDEX runs_by_job_id ON runs (workspace, job, id DESC);
CREATE INDEX runs_by_state_id ON runs (state, id DESC);

-- The runs still to follow in Airflow. The list of terminal states is the one of
-- `is_terminal_run_state` (store/mod.rs), and a query uses this index only when its WHERE
-- clause holds this exact condition.
CREATE INDEX runs_active ON runs (id) WHERE state NOT IN ('success', 'failed');

CREATE TABLE task_instances (
    run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id          TEXT    NOT NULL,
    map_index        INTEGER NOT NULL DEFAULT -1,
    try_number       INTEGER NOT NULL,
    state            TEXT,
    started_at       TEXT,
    ended_at         TEXT,
    duration_seconds REAL,
    updated_at       TEXT    NOT NULL,
    PRIMARY KEY (run_id, task_id, map_index, try_number)
) STRICT;

INSERT INTO task_instances (run_id, task_id, map_index, try_number, state, started_at,
                            ended_at, duration_seconds, updated_at)
SELECT run_id, task_id, map_index, try_number, state, started_at, ended_at, duration_seconds,
       updated_at
FROM task_instances_0002;

DROP TABLE task_instances_0002;
