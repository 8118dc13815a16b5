-- ack. ARGV: token. Returns 1 when the token was reserved, else 0.
if not unreserve(ARGV[1]) then
  return 0
end
drop_message(ARGV[1])
return 1
