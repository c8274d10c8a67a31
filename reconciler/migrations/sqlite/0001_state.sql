-- The state store, SQLite flavour (keep in step with ../postgres/0001_state.sql).
--
-- Timestamps are TEXT in RFC 3339 UTC with exactly six fractional digits
-- ("2024-05-01T12:00:00.000000Z"), written by olo, so text order is time order.
-- JSON values are TEXT. Tables are STRICT: a value of the wrong type is an error.
-- A migration that has been released is never edited: add a new file instead.

-- Commits seen on tracked branches. `id` is the insertion order (tie-break for equal seen_at).
CREATE TABLE revisions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    branch          TEXT    NOT NULL,
    sha             TEXT    NOT NULL,
    author_name     TEXT    NOT NULL,
    author_email    TEXT    NOT NULL,
    author_time     TEXT    NOT NULL,
    committer_name  TEXT    NOT NULL,
    committer_email TEXT    NOT NULL,
    committer_time  TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    signed          INTEGER NOT NULL CHECK (signed IN (0, 1)),
    status          TEXT    NOT NULL DEFAULT 'seen'
        CHECK (status IN ('seen', 'invalid', 'applying', 'applied', 'failed', 'skipped')),
    diagnostics     TEXT    NOT NULL DEFAULT '[]',
    seen_at         TEXT    NOT NULL,
    UNIQUE (branch, sha)
) STRICT;

CREATE INDEX revisions_by_branch_seen_at ON revisions (branch, seen_at DESC, id DESC);

-- Plans computed for a revision and their outcomes.
CREATE TABLE plans (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    branch      TEXT NOT NULL,
    sha         TEXT NOT NULL,
    summary     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    outcome     TEXT CHECK (outcome IN ('applied', 'failed')),
    error       TEXT,
    finished_at TEXT,
    FOREIGN KEY (branch, sha) REFERENCES revisions (branch, sha) ON DELETE CASCADE
) STRICT;

CREATE INDEX plans_by_revision ON plans (branch, sha, id DESC);

-- Resources olo created and owns in a target; only these are ever pruned.
CREATE TABLE inventory (
    target     TEXT NOT NULL,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    revision   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (target, name)
) STRICT;

-- Append-only: the triggers refuse UPDATE and DELETE.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    revision TEXT,
    details  TEXT NOT NULL
) STRICT;

CREATE INDEX audit_log_by_target ON audit_log (target, id DESC);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Ready / Reconciling / Stalled per tracked branch.
CREATE TABLE branch_status (
    branch         TEXT PRIMARY KEY,
    state          TEXT NOT NULL CHECK (state IN ('Ready', 'Reconciling', 'Stalled')),
    last_attempted TEXT,
    last_applied   TEXT,
    message        TEXT,
    diagnostics    TEXT NOT NULL DEFAULT '[]',
    updated_at     TEXT NOT NULL
) STRICT;

-- Webhook delivery ids already accepted (a redelivery is answered without enqueueing again).
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    received_at TEXT NOT NULL
) STRICT;

CREATE INDEX webhook_deliveries_by_received_at ON webhook_deliveries (received_at);

-- Airflow DAG runs of olo jobs.
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace      TEXT NOT NULL,
    job            TEXT NOT NULL,
    dag_id         TEXT NOT NULL,
    airflow_run_id TEXT NOT NULL,
    state          TEXT NOT NULL,
    "trigger"      TEXT NOT NULL CHECK ("trigger" IN ('api', 'commit', 'schedule')),
    triggered_by   TEXT,
    revision       TEXT,
    logical_date   TEXT,
    started_at     TEXT,
    ended_at       TEXT,
    updated_at     TEXT NOT NULL,
    UNIQUE (dag_id, airflow_run_id)
) STRICT;

CREATE INDEX runs_by_started_at ON runs (started_at DESC, id DESC);
CREATE INDEX runs_by_workspace ON runs (workspace, started_at DESC, id DESC);
CREATE INDEX runs_by_job ON runs (workspace, job, started_at DESC, id DESC);
CREATE INDEX runs_by_state ON runs (state, started_at DESC, id DESC);

-- Task instances of a run, one row per try (map_index -1 for an unmapped task).
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

-- OpenLineage events as received. `dedupe_key` makes a re-sent event a no-op.
-- Run events carry run id, event type and job; dataset and job events may lack them.
CREATE TABLE lineage_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key    TEXT NOT NULL UNIQUE,
    event_id      TEXT,
    run_id        TEXT,
    event_type    TEXT,
    event_time    TEXT NOT NULL,
    job_namespace TEXT,
    job_name      TEXT,
    raw           TEXT NOT NULL,
    received_at   TEXT NOT NULL
) STRICT;

CREATE INDEX lineage_events_by_run ON lineage_events (run_id, event_time);
CREATE INDEX lineage_events_by_job ON lineage_events (job_namespace, job_name, event_time DESC);

-- Job -> dataset edges: declared in the config repository or observed in lineage events.
CREATE TABLE lineage_edges (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    job_namespace     TEXT NOT NULL,
    job_name          TEXT NOT NULL,
    dataset_namespace TEXT NOT NULL,
    dataset_name      TEXT NOT NULL,
    direction         TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    source            TEXT NOT NULL CHECK (source IN ('declared', 'observed')),
    first_seen_at     TEXT NOT NULL,
    last_seen_at      TEXT NOT NULL,
    UNIQUE (job_namespace, job_name, dataset_namespace, dataset_name, direction, source)
) STRICT;

CREATE INDEX lineage_edges_by_dataset ON lineage_edges (dataset_namespace, dataset_name);

-- One writer across replicas: the holder of a named lease until it expires.
CREATE TABLE leader_lease (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    renewed_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;
