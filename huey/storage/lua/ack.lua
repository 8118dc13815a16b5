-- ack. ARGV: token, owner ('' for any). Returns 1 when the token was
-- reserved (by that owner), else 0.
if not unreserve(ARGV[1], ARGV[2]) then
  return 0
end
drop_message(ARGV[1])
return 1
