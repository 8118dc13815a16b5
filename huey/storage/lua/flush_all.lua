-- flush_all. Deletes every key of this name: the key/value keys named in
-- the index, then every fixed key (the counter too; see next_token).
for _, key in ipairs(redis.call('SMEMBERS', K.kvkeys)) do
  redis.call('DEL', key)
end
for i = 1, 14 do
  redis.call('DEL', KEYS[i])
end
return 0
