-- Admit one request against all its rules, atomically: check every rule, and only if all
-- pass, update them all. The same sums as gcra.py and memory.py (the Python reference).
--
-- KEYS: the rate keys (one GCRA TAT each), then the budget keys (hash: s spent, r reserved).
-- ARGV: now_us, n_rates, n_budgets, in_cost, out_price, max_out, clamp, min_out,
--       then per rate: interval, period, cost, per_out; then per budget: limit, ttl_s, resets_us.
-- Returns {allowed, out, reserved, refused_by (-1 none, 0 budget, i rate), retry_us,
--          then per rate: remaining, reset_us}.
local EPS = 1.0
local now = tonumber(ARGV[1])
local n_rates, n_budgets = tonumber(ARGV[2]), tonumber(ARGV[3])
local in_cost, out_price = tonumber(ARGV[4]), tonumber(ARGV[5])
local max_out, clamp, min_out = tonumber(ARGV[6]), ARGV[7] == '1', tonumber(ARGV[8])
local rb = 8 + 4 * n_rates  -- where the budget arguments start

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
    local a = 8 + 4 * (i - 1)
    local interval, period = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local tat = tat_of(i)
    states[#states + 1] = remaining(tat, interval, period)
    states[#states + 1] = math.floor(tat - now)
  end
  return states
end

local function result(head, states)
  for _, v in ipairs(states) do head[#head + 1] = v end
  return head
end

-- Budgets first: they decide how many output tokens the token rules count.
local out, reserved = max_out, 0
if n_budgets > 0 then
  local held = {}
  for j = 1, n_budgets do
    local b = rb + 3 * (j - 1)
    local limit = tonumber(ARGV[b + 1])
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
    local b = rb + 3 * (j - 1)
    if held[j] + reserved > tonumber(ARGV[b + 1]) then broke = true end
    local wait = tonumber(ARGV[b + 3]) - now
    if wait > retry then retry = wait end
  end
  if broke then
    return result({0, 0, 0, 0, math.ceil(retry)}, peek())
  end
end

local tats, states = {}, {}
local worst, worst_retry = -1, -1
for i = 1, n_rates do
  local a = 8 + 4 * (i - 1)
  local interval, period = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local cost = tonumber(ARGV[a + 3])
  if ARGV[a + 4] == '1' then cost = cost + out end
  local base = tat_of(i)
  local new = base + cost * interval
  if new - now <= period + EPS then
    tats[i] = new
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
  local b = rb + 3 * (j - 1)
  redis.call('HINCRBY', KEYS[n_rates + j], 'r', reserved)
  redis.call('EXPIRE', KEYS[n_rates + j], tonumber(ARGV[b + 2]))
end
return result({1, out, reserved, -1, 0}, states)
