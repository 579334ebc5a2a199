-- Read every slice of a canary's window in one call (the keys share one hash tag).
-- KEYS: the slices' hashes. Returns one flat field, value list per key.
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HGETALL', KEYS[i])
end
return out
