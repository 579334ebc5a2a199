-- Give back one slot's hold of a request reserved slot by slot, once: a later slot refused
-- it (or failed). The hold record (admit.lua) says what was held; it is deleted here, so a
-- resend, or a release after the record expired, gives back nothing.
--
-- KEYS: the hold record, then the slot's rate keys, then its budget keys (admit.lua's order).
-- ARGV[1]: now (microseconds, the caller's clock, as at the hold).
-- A rate gets back what it was charged less the time since the hold: meanwhile the counter
-- may have drained to empty while the hold kept it above (the hold's own share then drained
-- too), and giving that time back as well could let through more than the limit.
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
redis.call('DEL', KEYS[1])
local now = tonumber(ARGV[1])
local h = {}
for v in string.gmatch(raw, '%S+') do h[#h + 1] = tonumber(v) end
local at, reserved = h[1], h[2]
local n_rates = #h - 2
for i = 1, n_rates do
  local give = h[2 + i] - (now - at)
  if give > 0 then
    local tat = tonumber(redis.call('GET', KEYS[1 + i]))
    if tat ~= nil and tat > now then
      local moved = tat - give
      if moved > now then
        local ttl_ms = math.ceil((moved - now) / 1000) + 1000
        redis.call('SET', KEYS[1 + i], string.format('%.17g', moved), 'PX', ttl_ms)
      else
        redis.call('DEL', KEYS[1 + i])
      end
    end
  end
end
if reserved > 0 then
  for j = n_rates + 2, #KEYS do
    if redis.call('EXISTS', KEYS[j]) == 1 then
      if redis.call('HINCRBY', KEYS[j], 'r', 0 - reserved) < 0 then
        redis.call('HSET', KEYS[j], 'r', 0)
      end
    end
  end
end
return 1
