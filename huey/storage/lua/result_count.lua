-- result_count. Counts the live key/value keys, and forgets the names of
-- those Redis has expired (put_if_empty/enqueue_once with a ttl).
local live = 0
for _, key in ipairs(redis.call('SMEMBERS', K.kvkeys)) do
  if redis.call('EXISTS', key) == 1 then
    live = live + 1
  else
    redis.call('SREM', K.kvkeys, key)
  end
end
return live
