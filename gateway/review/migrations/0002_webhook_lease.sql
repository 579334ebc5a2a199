-- Webhook deliveries that outlive the process: ``webhook_lease`` is NULL when nothing is due,
-- else the time until which one process holds the delivery (0: due now, held by nobody).
-- A decision with a webhook sets it in the same UPDATE; a success or the last attempt clears
-- it; each process sweeps for leases that lapsed (a restart, a crashed instance) and takes
-- them with a compare-and-set, so one process delivers (gateway/review/webhook.py).
ALTER TABLE {p}items ADD COLUMN webhook_lease DOUBLE PRECISION;
CREATE INDEX {i}items_webhook ON {p}items (webhook_lease) WHERE webhook_lease IS NOT NULL;
-- Decisions of the release before, whose delivery a restart cut off: due now. The attempts
-- already recorded count (one that used them all is given up at once, as it was).
UPDATE {p}items SET webhook_lease = 0
WHERE state <> 'pending' AND data LIKE '%"webhook":"http%'
AND NOT EXISTS (SELECT 1 FROM {p}deliveries
                WHERE item = {p}items.id AND status >= 200 AND status < 300);
