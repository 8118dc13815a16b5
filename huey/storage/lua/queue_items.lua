-- queue_items. ARGV: last index (-1: all). Pending payloads in reserve order.
local out = {}
for _, token in ipairs(redis.call('ZRANGE', K.pending, 0, tonumber(ARGV[1]))) do
  out[#out + 1] = redis.call('HGET', K.data, token) or ''
end
return out
