-- The review store as the release before migrations created it on first use: items, their
-- webhook deliveries, console sessions, and the overview's rollups. Every statement is
-- IF NOT EXISTS, so on a store made by that release it creates what is missing (the rollup
-- tables were made by the first overview) and is recorded, changing nothing else.
-- {p}: the table prefix (review_ in SQLite, <schema>. in PostgreSQL); {i}: index names'.
CREATE TABLE IF NOT EXISTS {p}items (
    id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL,
    sla_at DOUBLE PRECISION NOT NULL, workflow TEXT NOT NULL, data TEXT NOT NULL,
    state TEXT NOT NULL, claimed_by TEXT, claimed_until DOUBLE PRECISION NOT NULL,
    decided_by TEXT, decided_at DOUBLE PRECISION, verdict TEXT, note TEXT,
    result TEXT, result_status INTEGER);
CREATE INDEX IF NOT EXISTS {i}items_queue ON {p}items (state, created, id);
CREATE TABLE IF NOT EXISTS {p}deliveries (
    item TEXT NOT NULL, attempt INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL,
    status INTEGER, error TEXT, PRIMARY KEY (item, attempt));
CREATE TABLE IF NOT EXISTS {p}sessions (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, roles TEXT NOT NULL,
    csrf TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS {p}rollups (
    bucket BIGINT NOT NULL, workflow TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (bucket, workflow));
CREATE TABLE IF NOT EXISTS {p}rollup_done (bucket BIGINT PRIMARY KEY, last_seq BIGINT);
