-- Prepended to every script of huey/storage/redis.py: the key names and the
-- helpers the verbs share. Every script gets the same KEYS, in this order
-- (the module docstring of huey/storage/redis.py says what each one holds);
-- a verb that needs one more key gets it as KEYS[15].
local K = {
  seq = KEYS[1], wake = KEYS[2], pending = KEYS[3], data = KEYS[4],
  priority = KEYS[5], deliveries = KEYS[6], reserved = KEYS[7],
  owner = KEYS[8], owned = KEYS[9], schedule = KEYS[10],
  sched_data = KEYS[11], sched_priority = KEYS[12], dead = KEYS[13],
  kvkeys = KEYS[14],
}

-- A new token (also used for dead letter ids): zero-padded so that string
-- order is arrival order. When the counter is missing (first use, or after
-- flush_all deleted it) it restarts from the server clock in microseconds,
-- not from 1: a token handed out before the flush must never be handed out
-- again, or a late ack from a worker that held it would end the wrong
-- reservation. The clock only seeds uniqueness; no verb reads time from it.
local function next_token()
  if redis.call('EXISTS', K.seq) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', K.seq, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return string.format('%016d', redis.call('INCR', K.seq))
end

-- Put a token (whose data and priority are already in the hashes) in the
-- pending set, and push one wake item so one blocked reserver wakes for it.
local function make_pending(token, priority)
  redis.call('ZADD', K.pending, -tonumber(priority), token)
  redis.call('RPUSH', K.wake, '1')
end

-- Owner bookkeeping: K.owner maps token -> owner; K.owned is a zero-score
-- sorted set of "owner \0 token" so one owner's tokens are one lexical range.
local function owned_tokens(owner)
  local members = redis.call('ZRANGEBYLEX', K.owned,
                             '[' .. owner .. '\0', '(' .. owner .. '\1')
  local tokens = {}
  for _, member in ipairs(members) do
    local token = string.sub(member, #owner + 2)
    -- An owner name containing "\0" could fall in another owner's range:
    -- the hash says who really holds the token.
    if redis.call('HGET', K.owner, token) == owner then
      tokens[#tokens + 1] = token
    end
  end
  return tokens
end

local function forget_owner(token)
  local owner = redis.call('HGET', K.owner, token)
  if owner then
    redis.call('HDEL', K.owner, token)
    redis.call('ZREM', K.owned, owner .. '\0' .. token)
  end
end

-- End a reservation; true when the token was reserved (by ``owner``, when
-- one is given: a worker whose lease ran out must not end the reservation
-- of the worker that got the message after it).
local function unreserve(token, owner)
  if owner and owner ~= '' and redis.call('HGET', K.owner, token) ~= owner then
    return false
  end
  if redis.call('ZREM', K.reserved, token) == 0 then
    return false
  end
  forget_owner(token)
  return true
end

-- A reserved message goes back to the queue under its old token, so it
-- keeps its place in line.
local function return_reserved(token, owner)
  if not unreserve(token, owner) then
    return false
  end
  make_pending(token, redis.call('HGET', K.priority, token) or 0)
  return true
end

local function drop_message(token)
  redis.call('HDEL', K.data, token)
  redis.call('HDEL', K.priority, token)
  redis.call('HDEL', K.deliveries, token)
end

-- Dead letter record: "priority\ntime\nreason-length\n" .. reason .. data.
-- time is the caller's float exactly as sent, so it reads back unchanged.
local function add_dead(data, reason, time, priority)
  local id = next_token()
  redis.call('HSET', K.dead, id, priority .. '\n' .. time .. '\n' .. #reason
             .. '\n' .. reason .. data)
  return id
end

local function parse_dead(record)
  local priority, _, length, start = string.match(
    record, '^([^\n]*)\n([^\n]*)\n(%d+)\n()')
  return string.sub(record, start + tonumber(length)), priority
end

-- A reservation cut short by a stop (not a crash) takes back the delivery
-- it counted, so a long task is not mistaken for poison. count is '1' or '0'.
local function uncount_delivery(token, count)
  if count == '0' and tonumber(redis.call('HGET', K.deliveries, token) or '0') > 0 then
    redis.call('HINCRBY', K.deliveries, token, -1)
  end
end
