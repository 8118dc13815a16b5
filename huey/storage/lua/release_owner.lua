-- release_owner. ARGV: owner. Returns how many reservations went back.
local tokens = owned_tokens(ARGV[1])
for _, token in ipairs(tokens) do
  return_reserved(token)
end
return #tokens
