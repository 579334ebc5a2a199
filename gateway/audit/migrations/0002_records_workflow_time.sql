-- Purges (per workflow, older than its retention) and `audit list --workflow` read records by
-- workflow and time. Built CONCURRENTLY so audit writes go on while it builds, which needs no
-- transaction; a build that failed half-way leaves an invalid index, dropped by the rerun.
-- Additive: the previous release's statements are unchanged against it.
-- compatible-from: 1
-- transaction: none
DROP INDEX CONCURRENTLY IF EXISTS {schema}.{schema}_records_workflow_time;
CREATE INDEX CONCURRENTLY {schema}_records_workflow_time ON {schema}.records (workflow, time);
