-- schedule_move_due. ARGV: now, limit. Moves up to limit messages whose eta
-- is <= now (soonest first) from the schedule to the queue, keeping their
-- token and priority. One script: no message is moved twice or lost.
local tokens = redis.call('ZRANGEBYSCORE', K.schedule, '-inf', ARGV[1],
                          'LIMIT', 0, tonumber(ARGV[2]))
for _, token in ipairs(tokens) do
  local data = redis.call('HGET', K.sched_data, token)
  local priority = redis.call('HGET', K.sched_priority, token) or '0'
  redis.call('ZREM', K.schedule, token)
  redis.call('HDEL', K.sched_data, token)
  redis.call('HDEL', K.sched_priority, token)
  if data then
    redis.call('HSET', K.data, token, data)
    redis.call('HSET', K.priority, token, priority)
    make_pending(token, priority)
  end
end
return #tokens
