-- Work any replica was asked for and only the leader does (see the PostgreSQL migration); a
-- SQLite store has one replica, so this table stays empty in practice.
CREATE TABLE work_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);
