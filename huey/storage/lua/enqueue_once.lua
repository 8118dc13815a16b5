-- enqueue_once. KEYS[15]: the claim's key/value key.
-- ARGV: ttl in milliseconds (0: no expiry), data, priority.
-- Claims the key and enqueues together, or does neither; returns the token
-- or false when the key was already claimed.
local claim = KEYS[15]
local ok
if tonumber(ARGV[1]) > 0 then
  ok = redis.call('SET', claim, '1', 'NX', 'PX', ARGV[1])
else
  ok = redis.call('SET', claim, '1', 'NX')
end
if not ok then
  return false
end
if tonumber(ARGV[1]) == 0 then
  redis.call('SADD', K.kvkeys, claim)  -- claims that expire are not indexed
end
local token = next_token()
redis.call('HSET', K.data, token, ARGV[2])
redis.call('HSET', K.priority, token, ARGV[3])
make_pending(token, ARGV[3])
return token
