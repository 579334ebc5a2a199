-- Each `gateway eval` run (and each promotion's evaluation gate): the workflow, the version
-- and model evaluated, the metric against its target, pass and fail counts and the failing
-- cases, so a run is compared with the last one of the same set (gateway/tools/evaluate.py).
-- Additive: the previous release's statements are unchanged against it.
-- compatible-from: 1
CREATE TABLE IF NOT EXISTS {schema}.eval_runs (
    workflow TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    version TEXT NOT NULL,
    candidate BOOLEAN NOT NULL,
    model TEXT NOT NULL,
    offline BOOLEAN NOT NULL,
    set_digest TEXT NOT NULL,
    metric TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    target DOUBLE PRECISION NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    failing TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS {schema}_eval_runs_workflow ON {schema}.eval_runs (workflow, at);
