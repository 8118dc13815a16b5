-- enqueue / enqueue_many. ARGV: data1, priority1, data2, priority2, ...
-- Returns the new tokens, in the order given.
local tokens = {}
for i = 1, #ARGV, 2 do
  local token = next_token()
  redis.call('HSET', K.data, token, ARGV[i])
  redis.call('HSET', K.priority, token, ARGV[i + 1])
  make_pending(token, ARGV[i + 1])
  tokens[#tokens + 1] = token
end
return tokens
