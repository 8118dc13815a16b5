-- reclaim_expired. ARGV: now. Returns reservations whose lease deadline is
-- before now (strictly) to the queue; returns how many.
local tokens = redis.call('ZRANGEBYSCORE', K.reserved, '-inf', '(' .. ARGV[1])
for _, token in ipairs(tokens) do
  return_reserved(token)
end
return #tokens
