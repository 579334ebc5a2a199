-- Settle one admitted request: its reservation leaves each budget and what it really cost
-- is counted as spent; token rules get back (or pay) the difference to what was counted.
--
-- KEYS: the budget keys, then the token-rate keys, then (optional) the settlement's marker.
-- ARGV[1]: JSON {now, n_budgets, reserved, actual, refund, intervals: [per token rate]}.
-- With a marker the settlement is applied once: a resend after a timeout is a no-op.
local a = cjson.decode(ARGV[1])
local now, n_budgets = a.now, a.n_budgets
local n_rates = #a.intervals
if #KEYS > n_budgets + n_rates then
  if not redis.call('SET', KEYS[#KEYS], 1, 'NX', 'PX', 86400000) then return 0 end
end
local reserved, actual, refund = a.reserved, a.actual, a.refund
for j = 1, n_budgets do
  local key = KEYS[j]
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 's', actual)
    -- 0 - reserved, not -reserved: Lua writes -0 as "-0", which HINCRBY refuses.
    if redis.call('HINCRBY', key, 'r', 0 - reserved) < 0 then
      redis.call('HSET', key, 'r', 0)
    end
  end
end
if refund ~= 0 then
  for i = n_budgets + 1, n_budgets + n_rates do
    local interval = a.intervals[i - n_budgets]
    local tat = tonumber(redis.call('GET', KEYS[i]))
    if tat == nil or tat < now then tat = now end
    local moved = tat - refund * interval
    if moved > now then
      local ttl_ms = math.ceil((moved - now) / 1000) + 1000
      redis.call('SET', KEYS[i], string.format('%.17g', moved), 'PX', ttl_ms)
    else
      redis.call('DEL', KEYS[i])
    end
  end
end
return 1
