-- Every policy version the gateway loaded (its content hash, text, source file, owner, when it
-- was first seen), kept once per (workflow, version); and every promotion and rollback, with
-- who made it and why (gateway/audit/history.py, docs/policy-lifecycle.md).
-- Additive: the previous release's statements are unchanged against it.
-- compatible-from: 1
CREATE TABLE IF NOT EXISTS {schema}.policy_versions (
    workflow TEXT NOT NULL,
    version TEXT NOT NULL,
    loaded_at DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL,
    owner TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (workflow, version));
CREATE TABLE IF NOT EXISTS {schema}.policy_changes (
    workflow TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    action TEXT NOT NULL,
    from_version TEXT,
    to_version TEXT NOT NULL,
    by_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS {schema}_policy_changes_workflow ON {schema}.policy_changes (workflow, at);
