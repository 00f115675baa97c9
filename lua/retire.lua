-- include: prelude
-- retire.lua: a campaign or sale that has ended, and whose every event is in
-- MySQL, leaves the live registry (the relay's and the expiry task's loops).
--
-- KEYS[1] meta      {coupon:ID}:meta or {sale:ID}:meta
-- KEYS[2] outbox    its outbox stream
-- KEYS[3] counted   the campaign's users (set) or the sale's orders (hash)
-- KEYS[4] deadlines the sale's reserved orders (zset); for a campaign, its meta again (unused)
-- ARGV[1] id  ARGV[2] member ('coupon:ID' | 'sale:ID')  ARGV[3] kind ('coupon' | 'sale')
-- ARGV[4] ends_at the caller saw (ms)  ARGV[5] rows MySQL holds for it (issued users or orders)
-- ARGV[6] keep its keys this long after its end (ms)  ARGV[7] and at least this long from now (ms)
--
-- The caller checked MySQL; this checks Redis again, atomically: it has ended
-- (at the ends_at the caller saw: not replaced since), its outbox is empty
-- (Kafka acknowledged every event), a sale holds no reservation (nothing can
-- change any more), and Redis holds as many users / orders as MySQL has rows.
-- Then meta gets retired_at, and the caller moves the id from the registry to
-- `retiring` at the returned max(ends_at + keep, now + at least): those two
-- are in other slots on Redis Cluster. Run again for one already retired
-- (the caller died in between), it answers the same. Nothing is deleted here.
-- Returns {'retired', delete_at_ms} | {'changed'} (not so any more) | {'gone'} (no meta)
local meta = redis.call('HMGET', KEYS[1], 'ends_at')
if not meta[1] then
  return {'gone'}
end
local now = now_ms()
local ends_at = tonumber(meta[1])
if not has_ended(now, ends_at) or ends_at ~= tonumber(ARGV[4]) then
  return {'changed'}
end
if redis.call('XLEN', KEYS[2]) > 0 then
  return {'changed'}
end
local rows
if ARGV[3] == 'sale' then
  if redis.call('ZCARD', KEYS[4]) > 0 then
    return {'changed'}
  end
  -- Released orders Redis forgot once MySQL had them count too (forget_orders.lua).
  rows = redis.call('HLEN', KEYS[3]) + tonumber(redis.call('HGET', KEYS[1], 'forgotten') or '0')
else
  rows = redis.call('SCARD', KEYS[3])
end
if rows ~= tonumber(ARGV[5]) then
  return {'changed'}
end
local delete_at = math.max(ends_at + tonumber(ARGV[6]), now + tonumber(ARGV[7]))
redis.call('HSETNX', KEYS[1], 'retired_at', int(now))
return {'retired', delete_at}
