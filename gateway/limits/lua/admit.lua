-- Admit one request against all its rules, atomically: check every rule, and only if all
-- pass, update them all. The same sums as gcra.py and memory.py (the Python reference).
--
-- KEYS: the rate keys (one GCRA TAT each), then the budget keys (hash: s spent, r reserved),
-- then, for one slot of a request reserved slot by slot, its hold record.
-- ARGV[1]: JSON {now, in_cost, out_price, max_out, clamp, min_out, in_tokens,
--                rates: [[interval, period, cost, tokens], ...],
--                budgets: [[limit, ttl_s, resets_us], ...], hold_ms}
-- The hold record (written only when admitted, kept hold_ms) says what release.lua gives
-- back if a later slot refuses: "now reserved added_us_of_each_rate...".
-- Returns JSON [allowed, out, reserved, refused_by (-1 none, 0 budget, i rate), retry_us,
--               then per rate: remaining, reset_us].
-- JSON both ways: one argument to encode and one string to parse keep the client's share of
-- the round trip small (bench/limits.py).
local EPS = 1.0
local a = cjson.decode(ARGV[1])
local now = a.now
local rates, budgets = a.rates, a.budgets
local n_rates, n_budgets = #rates, #budgets
local in_cost, out_price = a.in_cost, a.out_price
local max_out, clamp, min_out = a.max_out, a.clamp, a.min_out

local function out_cost(tokens)
  local c = math.ceil(tokens * out_price - 1e-6)
  if c < 0 then return 0 end
  return c
end

local function remaining(tat, interval, period)
  local r = math.floor((period - (tat - now) + EPS) / interval)
  if r < 0 then return 0 end
  return r
end

local function tat_of(i)
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then return now end
  return tat
end

local function peek()
  local states = {}
  for i = 1, n_rates do
    local interval, period = rates[i][1], rates[i][2]
    local tat = tat_of(i)
    states[#states + 1] = remaining(tat, interval, period)
    states[#states + 1] = math.floor(tat - now)
  end
  return states
end

local function result(head, states)
  for _, v in ipairs(states) do head[#head + 1] = v end
  return cjson.encode(head)
end

-- Budgets first: they decide how many output tokens the token rules count.
local out, reserved = max_out, 0
if n_budgets > 0 then
  local held = {}
  for j = 1, n_budgets do
    local limit = budgets[j][1]
    local v = redis.call('HMGET', KEYS[n_rates + j], 's', 'r')
    local used = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
    held[j] = used
    if clamp then
      local can = out
      if out_price > 0 then can = math.floor((limit - used - in_cost) / out_price) end
      if can < -1 then can = -1 end
      if can < out then out = can end
    end
  end
  reserved = in_cost + out_cost(out)
  local broke = out < min_out
  local retry = 0
  for j = 1, n_budgets do
    if held[j] + reserved > budgets[j][1] then broke = true end
    local wait = budgets[j][3] - now
    if wait > retry then retry = wait end
  end
  if broke then
    return result({0, 0, 0, 0, math.ceil(retry)}, peek())
  end
end

local tats, added, states = {}, {}, {}
local worst, worst_retry = -1, -1
for i = 1, n_rates do
  local interval, period, cost = rates[i][1], rates[i][2], rates[i][3]
  if rates[i][4] then cost = cost + a.in_tokens + out end
  local base = tat_of(i)
  local new = base + cost * interval
  if new - now <= period + EPS then
    tats[i], added[i] = new, new - base
    states[#states + 1] = remaining(new, interval, period)
    states[#states + 1] = math.floor(new - now)
  else
    local retry = new - period - now
    if cost * interval > period + EPS then retry = period end
    if retry > worst_retry then worst, worst_retry = i, retry end
    states[#states + 1] = remaining(base, interval, period)
    states[#states + 1] = math.floor(base - now)
  end
end
if worst > 0 then
  return result({0, 0, 0, worst, math.ceil(worst_retry)}, states)
end

for i = 1, n_rates do
  local ttl_ms = math.ceil((tats[i] - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.17g', tats[i]), 'PX', ttl_ms)
end
for j = 1, n_budgets do
  -- A period's key gets its expiry when it is created (nothing was reserved before).
  if redis.call('HINCRBY', KEYS[n_rates + j], 'r', reserved) == reserved then
    redis.call('EXPIRE', KEYS[n_rates + j], budgets[j][2])
  end
end
if #KEYS > n_rates + n_budgets then
  -- Numbers as %.17g: cjson keeps 14 digits, and now (microseconds) has 16.
  local parts = {string.format('%.17g', now), tostring(reserved)}
  for i = 1, n_rates do parts[#parts + 1] = string.format('%.17g', added[i]) end
  redis.call('SET', KEYS[#KEYS], table.concat(parts, ' '), 'PX', a.hold_ms)
end
return result({1, out, reserved, -1, 0}, states)
