-- Work any replica was asked for (a push or pull request webhook, an API reconcile request) and
-- only the leader does: a follower writes it here, the leader takes it (and deletes it) within
-- a second. With one replica the queue stays in memory and this table stays empty.
CREATE TABLE work_requests (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
