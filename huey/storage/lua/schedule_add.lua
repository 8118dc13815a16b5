-- schedule_add. ARGV: data, eta, priority. Returns the token.
local token = next_token()
redis.call('HSET', K.sched_data, token, ARGV[1])
redis.call('HSET', K.sched_priority, token, ARGV[3])
redis.call('ZADD', K.schedule, ARGV[2], token)
return token
