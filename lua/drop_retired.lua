-- include: prelude, queue
-- drop_retired.lua: delete a retired campaign's or sale's keys, in one step.
--
-- KEYS[1] meta      {coupon:ID}:meta or {sale:ID}:meta
-- KEYS[2..] every other key of the campaign or sale
-- ARGV[1] margin (ms): a campaign's keys stay until this long after the
--         deadline of the last reservation holding its coupon (`held_until`),
--         so the expiry task has released it (giving the coupon back) first
-- ARGV[2] its waiting room's `joined` key: the prefix of the room's parts
--
-- One script: a request sees every key or none. A request that finds none
-- is answered from MySQL, and no script writes to a campaign or sale whose
-- meta is gone, so nothing brings a key back.
-- Returns {'dropped'} | {'revived'} (created again since it retired, or
-- already gone: its keys left alone) | {'held', held_until, try_again_at}.
-- The caller then drops its entry in `retiring` (dropped, revived) or moves
-- it to try_again_at (held): `retiring` is in another slot on Redis Cluster.
local meta = redis.call('HMGET', KEYS[1], 'retired_at', 'held_until', 'queue_rate')
if not meta[1] then
  return {'revived'}
end
local now = now_ms()
local margin = tonumber(ARGV[1])
if meta[2] and tonumber(meta[2]) + margin > now then
  return {'held', tonumber(meta[2]), tonumber(meta[2]) + margin}
end
if meta[3] then
  drop_joined(ARGV[2])
end
redis.call('DEL', unpack(KEYS, 2))
redis.call('DEL', KEYS[1])
return {'dropped'}
