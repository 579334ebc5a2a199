-- The console's explorer and `audit list` filter by workflow (and a reason, decision, subject
-- or entity) and page in seq order: `workflow = $1 AND reasons LIKE $2 ORDER BY seq LIMIT n`.
-- With (workflow, seq) the planner walks one workflow's records in seq order and stops at the
-- page's end, instead of walking every record's seq (bench/console.py: p95 490 ms -> see
-- docs/performance.md#the-console). The reason filter is checked on the rows this index
-- yields, so no index of its own is needed. Built CONCURRENTLY, as 0002.
-- Additive: the previous release's statements are unchanged against it.
-- compatible-from: 1
-- transaction: none
DROP INDEX CONCURRENTLY IF EXISTS {schema}.{schema}_records_workflow_seq;
CREATE INDEX CONCURRENTLY {schema}_records_workflow_seq ON {schema}.records (workflow, seq);
