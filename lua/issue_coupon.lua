-- issue_coupon.lua: first-come coupon issuance, atomically.
--
-- KEYS[1]  campaign hash   {coupon:ID}:meta    fields total, remaining, starts_at, ends_at (ms since epoch; ends_at 0 = never)
-- KEYS[2]  issued users    {coupon:ID}:users   set of user ids
-- KEYS[3]  outbox stream   {coupon:ID}:outbox  one entry per issue, removed by the relay once Kafka has it
-- ARGV[1]  user id (decimal string)
-- ARGV[2]  coupon id (decimal string), copied into the outbox entry
--
-- Returns one of
--   {'issued', remaining, issued_at_ms, outbox_entry_id}
--   {'unknown'} | {'not_started'} | {'ended'} | {'already'} | {'sold_out'}
-- Checks run in this order and nothing is written unless every one passes, so a
-- decrement, the user's membership and the outbox record are never separated.
local meta = redis.call('HMGET', KEYS[1], 'remaining', 'starts_at', 'ends_at')
if not meta[1] then
  return {'unknown'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(meta[2]) then
  return {'not_started'}
end
local ends_at = tonumber(meta[3])
if ends_at > 0 and now >= ends_at then
  return {'ended'}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {'already'}
end
if tonumber(meta[1]) <= 0 then
  return {'sold_out'}
end
local remaining = redis.call('HINCRBY', KEYS[1], 'remaining', -1)
redis.call('SADD', KEYS[2], ARGV[1])
local id = redis.call('XADD', KEYS[3], '*', 'coupon_id', ARGV[2], 'user_id', ARGV[1], 'issued_at', now)
return {'issued', remaining, now, id}
