-- release_owner. ARGV: owner, count_delivery (1, or 0 to take the deliveries
-- back). Returns how many reservations went back.
local tokens = owned_tokens(ARGV[1])
for _, token in ipairs(tokens) do
  return_reserved(token)
  uncount_delivery(token, ARGV[2])
end
return #tokens
