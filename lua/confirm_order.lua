-- confirm_order.lua: a payment confirmation turns a reserved order into a paid one.
--
-- KEYS[1] orders  [2] deadlines  [3] outbox  (the sale's keys)
-- KEYS[4] ranking bucket of the current hour (zset sku -> paid orders)
-- KEYS[5] paying (orders held by a wallet payment under way)
-- ARGV[1] order id  ARGV[2] amount paid  ARGV[3] payment key  ARGV[4] bucket TTL (s)
-- ARGV[5] 'apart': the bucket is in another slot (Redis Cluster; KEYS[4] is then
--   one of the sale's keys, unused): the caller bumps it after a fresh payment
--
-- Returns {'paid', order_json, 'fresh'} (paid now) | {'paid', order_json} (it already
--   was, by this same payment: key and amount; idempotent) | {'already_paid', order_json} (paid by another
--   payment: the gateway must refund this one)
--   | {'cancelled' | 'expired', order_json} | {'late', order_json} (reserved but past
--   its deadline: the caller releases it as expired) | {'amount_mismatch', to_pay}
--   | {'unknown_order'} | {'paying', order_json} (a wallet payment holds it)
-- An order paid by a wallet (payment_key 'wallet') takes no gateway payment.
-- Paying only before the deadline and expiring only after it gives a confirm
-- racing the expiry exactly one winner.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return {'unknown_order'}
end
local order = cjson.decode(raw)
if order.status == 'paid' then
  if order.payment_key == ARGV[3] and ARGV[3] ~= 'wallet' and tonumber(ARGV[2]) == order.to_pay then
    return {'paid', raw}
  end
  return {'already_paid', raw}
end
if order.status ~= 'reserved' then
  return {order.status, raw}
end
if redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  return {'paying', raw}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= order.expires_at then
  return {'late', raw}
end
if tonumber(ARGV[2]) ~= order.to_pay then
  return {'amount_mismatch', tostring(order.to_pay)}
end
order.status = 'paid'
order.payment_key = ARGV[3]
order.updated_at = now
order.version = order.version + 1
local json = cjson.encode(order)
redis.call('HSET', KEYS[1], ARGV[1], json)
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[5] ~= 'apart' then
  for _, item in ipairs(order.items) do
    redis.call('ZINCRBY', KEYS[4], 1, item.sku)
  end
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[4]))
end
redis.call('XADD', KEYS[3], '*', 'order', json)
return {'paid', json, 'fresh'}
