-- flush_results. Deletes every key/value key of this name, and their index.
for _, key in ipairs(redis.call('SMEMBERS', K.kvkeys)) do
  redis.call('DEL', key)
end
redis.call('DEL', K.kvkeys)
return 0
