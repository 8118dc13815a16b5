-- dead_letter. ARGV: token, reason, time. Ends the reservation and keeps
-- the message as a dead letter, together; returns the id, or false when the
-- token was not reserved.
local token = ARGV[1]
if not unreserve(token) then
  return false
end
local data = redis.call('HGET', K.data, token) or ''
local priority = redis.call('HGET', K.priority, token) or '0'
drop_message(token)
return add_dead(data, ARGV[2], ARGV[3], priority)
