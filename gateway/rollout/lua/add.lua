-- Add one flush of a canary's samples to one slice of its window, atomically.
-- KEYS[1]: the slice's hash. ARGV[1]: its time to live in seconds (longer than the window);
-- then field, amount pairs (requests, errors, ..., latency buckets l<k>).
for i = 2, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
