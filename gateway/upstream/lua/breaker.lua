-- One circuit's state in one hash; every change is this script, so instances sharing the
-- Redis see one state machine. Times come from the Redis server's clock, not the callers'.
-- KEYS[1]: the circuit's hash.  ARGV: op ('allow' | 'record'), open_s, ok ('1' | '0'),
-- failures, error_rate, window_s, min_calls.
-- allow -> 1 closed, 0 open (fail fast), 2 half-open: this caller is the one probe.
-- record -> 1 closed, 0 open.
local key = KEYS[1]
local op = ARGV[1]
local open_s = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local s = redis.call('HMGET', key, 'open_until', 'probe_at', 'consecutive', 'wstart', 'calls', 'fails')
local open_until = tonumber(s[1]) or 0
local probe_at = tonumber(s[2]) or 0

if op == 'allow' then
  if open_until == 0 then return 1 end
  if now < open_until then return 0 end
  if probe_at > 0 and now - probe_at < open_s then return 0 end -- a probe is out
  redis.call('HSET', key, 'probe_at', tostring(now))
  return 2
end

local ok = ARGV[3] == '1'
local ttl = math.ceil((tonumber(ARGV[6]) + open_s) * 2000)
if open_until > 0 then
  if probe_at == 0 then return 0 end -- an answer from before the circuit opened
  if ok then
    redis.call('DEL', key)
    return 1
  end
  redis.call('HSET', key, 'open_until', tostring(now + open_s), 'probe_at', '0')
  redis.call('PEXPIRE', key, ttl)
  return 0
end

local consecutive = tonumber(s[3]) or 0
local wstart = tonumber(s[4]) or now
local calls = tonumber(s[5]) or 0
local fails = tonumber(s[6]) or 0
if now - wstart >= tonumber(ARGV[6]) then
  wstart, calls, fails = now, 0, 0
end
calls = calls + 1
if ok then consecutive = 0 else consecutive = consecutive + 1; fails = fails + 1 end
local min_calls = tonumber(ARGV[7])
if consecutive >= tonumber(ARGV[4])
    or (calls >= min_calls and fails / calls >= tonumber(ARGV[5])) then
  redis.call('HSET', key, 'open_until', tostring(now + open_s), 'probe_at', '0',
    'consecutive', '0', 'wstart', tostring(now), 'calls', '0', 'fails', '0')
  redis.call('PEXPIRE', key, ttl)
  return 0
end
redis.call('HSET', key, 'consecutive', tostring(consecutive), 'wstart', tostring(wstart),
  'calls', tostring(calls), 'fails', tostring(fails))
redis.call('PEXPIRE', key, ttl)
return 1
