-- dead_letter. ARGV: token, reason, time, owner ('' for any). Ends the
-- reservation and keeps the message as a dead letter, together; returns the
-- id, or false when the token was not reserved (by that owner).
local token = ARGV[1]
if not unreserve(token, ARGV[4]) then
  return false
end
local data = redis.call('HGET', K.data, token) or ''
local priority = redis.call('HGET', K.priority, token) or '0'
drop_message(token)
return add_dead(data, ARGV[2], ARGV[3], priority)
