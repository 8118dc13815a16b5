-- schedule_items. ARGV: last index (-1: all).
-- Returns eta1, data1, eta2, data2, ... soonest first.
local entries = redis.call('ZRANGE', K.schedule, 0, tonumber(ARGV[1]), 'WITHSCORES')
local out = {}
for i = 1, #entries, 2 do
  out[#out + 1] = entries[i + 1]
  out[#out + 1] = redis.call('HGET', K.sched_data, entries[i]) or ''
end
return out
