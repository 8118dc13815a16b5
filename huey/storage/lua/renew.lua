-- renew. ARGV: owner, new lease deadline. Returns how many leases moved.
local tokens = owned_tokens(ARGV[1])
for _, token in ipairs(tokens) do
  redis.call('ZADD', K.reserved, 'XX', ARGV[2], token)
end
return #tokens
