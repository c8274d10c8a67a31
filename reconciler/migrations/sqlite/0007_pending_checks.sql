-- The check after an apply that its target (Airflow) did not answer, per branch: the commit, the
-- plan that wrote its files and when that apply began. A restarted olo, or a new leader, runs it
-- again before the commit counts as applied (engine/check.rs, `Unchecked`).
CREATE TABLE pending_checks (
    branch TEXT PRIMARY KEY,
    sha    TEXT NOT NULL,
    plan   TEXT NOT NULL,
    since  TEXT NOT NULL
);
