-- The state store, PostgreSQL flavour (keep in step with ../sqlite/0001_state.sql).
--
-- Timestamps are TIMESTAMPTZ, JSON values JSONB (which does not keep object key order).
-- Names that lists are sorted by use COLLATE "C" (byte order, as in SQLite), whatever the
-- database's locale. A migration that has been released is never edited: add a new file instead.

-- Commits seen on tracked branches. `id` is the insertion order (tie-break for equal seen_at).
CREATE TABLE revisions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch          TEXT        NOT NULL,
    sha             TEXT        NOT NULL,
    author_name     TEXT        NOT NULL,
    author_email    TEXT        NOT NULL,
    author_time     TIMESTAMPTZ NOT NULL,
    committer_name  TEXT        NOT NULL,
    committer_email TEXT        NOT NULL,
    committer_time  TIMESTAMPTZ NOT NULL,
    message         TEXT        NOT NULL,
    signed          BOOLEAN     NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'seen'
        CHECK (status IN ('seen', 'invalid', 'applying', 'applied', 'failed', 'skipped')),
    diagnostics     JSONB       NOT NULL DEFAULT '[]',
    seen_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (branch, sha)
);

CREATE INDEX revisions_by_branch_seen_at ON revisions (branch, seen_at DESC, id DESC);

-- Plans computed for a revision and their outcomes.
CREATE TABLE plans (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch      TEXT        NOT NULL,
    sha         TEXT        NOT NULL,
    summary     JSONB       NOT NULL,
    body        JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    outcome     TEXT CHECK (outcome IN ('applied', 'failed')),
    error       TEXT,
    finished_at TIMESTAMPTZ,
    FOREIGN KEY (branch, sha) REFERENCES revisions (branch, sha) ON DELETE CASCADE
);

CREATE INDEX plans_by_revision ON plans (branch, sha, id DESC);

-- Resources olo created and owns in a target; only these are ever pruned.
CREATE TABLE inventory (
    target     TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    hash       TEXT             NOT NULL,
    revision   TEXT             NOT NULL,
    updated_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (target, name)
);

-- Append-only: the triggers refuse UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL,
    actor    TEXT        NOT NULL,
    action   TEXT        NOT NULL,
    target   TEXT        NOT NULL,
    revision TEXT,
    details  JSONB       NOT NULL
);

CREATE INDEX audit_log_by_target ON audit_log (target, id DESC);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Ready / Reconciling / Stalled per tracked branch.
CREATE TABLE branch_status (
    branch         TEXT PRIMARY KEY,
    state          TEXT        NOT NULL CHECK (state IN ('Ready', 'Reconciling', 'Stalled')),
    last_attempted TEXT,
    last_applied   TEXT,
    message        TEXT,
    diagnostics    JSONB       NOT NULL DEFAULT '[]',
    updated_at     TIMESTAMPTZ NOT NULL
);

-- Webhook delivery ids already accepted (a redelivery is answered without enqueueing again).
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event       TEXT        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX webhook_deliveries_by_received_at ON webhook_deliveries (received_at);

-- Airflow DAG runs of olo jobs.
CREATE TABLE runs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace      TEXT        NOT NULL,
    job            TEXT        NOT NULL,
    dag_id         TEXT        NOT NULL,
    airflow_run_id TEXT        NOT NULL,
    state          TEXT        NOT NULL,
    "trigger"      TEXT        NOT NULL CHECK ("trigger" IN ('api', 'commit', 'schedule')),
    triggered_by   TEXT,
    revision       TEXT,
    logical_date   TIMESTAMPTZ,
    started_at     TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (dag_id, airflow_run_id)
);

CREATE INDEX runs_by_started_at ON runs (started_at DESC, id DESC);
CREATE INDEX runs_by_workspace ON runs (workspace, started_at DESC, id DESC);
CREATE INDEX runs_by_job ON runs (workspace, job, started_at DESC, id DESC);
CREATE INDEX runs_by_state ON runs (state, started_at DESC, id DESC);

-- Task instances of a run, one row per try (map_index -1 for an unmapped task).
CREATE TABLE task_instances (
    run_id           BIGINT      NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id          TEXT        NOT NULL,
    map_index        INTEGER     NOT NULL DEFAULT -1,
    try_number       INTEGER     NOT NULL,
    state            TEXT,
    started_at       TIMESTAMPTZ,
    ended_at         TIMESTAMPTZ,
    duration_seconds DOUBLE PRECISION,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, task_id, map_index, try_number)
);

-- OpenLineage events as received. `dedupe_key` makes a re-sent event a no-op.
-- Run events carry run id, event type and job; dataset and job events may lack them.
CREATE TABLE lineage_events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key    TEXT        NOT NULL UNIQUE,
    event_id      TEXT,
    run_id        TEXT,
    event_type    TEXT,
    event_time    TIMESTAMPTZ NOT NULL,
    job_namespace TEXT,
    job_name      TEXT,
    raw           JSONB       NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX lineage_events_by_run ON lineage_events (run_id, event_time);
CREATE INDEX lineage_events_by_job ON lineage_events (job_namespace, job_name, event_time DESC);

-- Job -> dataset edges: declared in the config repository or observed in lineage events.
CREATE TABLE lineage_edges (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_namespace     TEXT        NOT NULL,
    job_name          TEXT        NOT NULL,
    dataset_namespace TEXT        NOT NULL,
    dataset_name      TEXT        NOT NULL,
    direction         TEXT        NOT NULL CHECK (direction IN ('in', 'out')),
    source            TEXT        NOT NULL CHECK (source IN ('declared', 'observed')),
    first_seen_at     TIMESTAMPTZ NOT NULL,
    last_seen_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (job_namespace, job_name, dataset_namespace, dataset_name, direction, source)
);

CREATE INDEX lineage_edges_by_dataset ON lineage_edges (dataset_namespace, dataset_name);

-- One writer across replicas: the holder of a named lease until it expires.
CREATE TABLE leader_lease (
    name        TEXT PRIMARY KEY,
    holder      TEXT        NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
