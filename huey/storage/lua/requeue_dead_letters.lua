-- requeue_dead_letters. ARGV: 'all', or 'ids' followed by dead letter ids.
-- Each letter goes back to the queue as a new message with its priority;
-- unknown ids are skipped. Returns how many were requeued.
local ids
if ARGV[1] == 'all' then
  ids = redis.call('HKEYS', K.dead)
  table.sort(ids)
else
  ids = {}
  for i = 2, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
end
local count = 0
for _, id in ipairs(ids) do
  local record = redis.call('HGET', K.dead, id)
  if record then
    redis.call('HDEL', K.dead, id)
    local data, priority = parse_dead(record)
    local token = next_token()
    redis.call('HSET', K.data, token, data)
    redis.call('HSET', K.priority, token, priority)
    make_pending(token, priority)
    count = count + 1
  end
end
return count
