-- reserve. ARGV: owner, lease deadline (the caller's now + lease).
-- Returns {token, data, deliveries}, or false when nothing is pending.
while true do
  local popped = redis.call('ZPOPMIN', K.pending)
  if #popped == 0 then
    -- Empty: every wake item left is stale. Deleting them here is what keeps
    -- the list short; a message enqueued after this script pushes a fresh
    -- item, so a reserver that blocks next cannot miss it.
    redis.call('DEL', K.wake)
    return false
  end
  local token = popped[1]
  local data = redis.call('HGET', K.data, token)
  if data then
    local deliveries = redis.call('HINCRBY', K.deliveries, token, 1)
    redis.call('ZADD', K.reserved, ARGV[2], token)
    redis.call('HSET', K.owner, token, ARGV[1])
    redis.call('ZADD', K.owned, 0, ARGV[1] .. '\0' .. token)
    -- More wake items than pending messages can only wake reservers for
    -- nothing: keep at most one per pending message.
    local left = redis.call('ZCARD', K.pending)
    if left == 0 then
      redis.call('DEL', K.wake)
    elseif redis.call('LLEN', K.wake) > left then
      redis.call('LTRIM', K.wake, -left, -1)
    end
    return {token, data, deliveries}
  end
  -- A token without its payload (should not happen): drop it, look again.
  drop_message(token)
end
