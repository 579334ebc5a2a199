-- The audit chain as the first release created it: records, the chain head, purge checkpoints.
-- A database made by that release (no schema_migrations table) is recorded as this version
-- without running it again.
-- compatible-from: 1
CREATE TABLE IF NOT EXISTS {schema}.records (
    seq BIGINT PRIMARY KEY,
    time DOUBLE PRECISION NOT NULL,
    workflow TEXT,
    request_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    subject TEXT,
    reasons TEXT NOT NULL,
    entity_types TEXT NOT NULL,
    body BYTEA,
    digest TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS {schema}_records_time ON {schema}.records (time);
CREATE INDEX IF NOT EXISTS {schema}_records_rid ON {schema}.records (request_id);
CREATE TABLE IF NOT EXISTS {schema}.head (
    id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
    seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
    purged BIGINT NOT NULL, signature TEXT NOT NULL);
INSERT INTO {schema}.head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')
    ON CONFLICT (id) DO NOTHING;
