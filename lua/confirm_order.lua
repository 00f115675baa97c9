-- include: prelude, order
-- confirm_order.lua: a payment confirmation turns a reserved order into a paid one.
--
-- KEYS[1] orders  [2] deadlines  [3] paying (orders held by a wallet payment
--   under way)  [4] outbox  (the sale's keys)
-- KEYS[5] ranking bucket of the current hour (zset sku -> paid orders), absent
--   when it is in another slot (Redis Cluster): the caller bumps it after a
--   fresh payment (the layout of pay_settle.lua: lib/order.lua's mark_paid reads it)
-- ARGV[1] order id  ARGV[2] amount paid  ARGV[3] payment key  ARGV[4] bucket TTL (s)
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
local order = decode_order(raw)
local same_payment = order.payment_key == ARGV[3] and ARGV[3] ~= 'wallet' and tonumber(ARGV[2]) == order.to_pay
local refused = not_payable(order, raw, same_payment)
if refused then
  return refused
end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return {'paying', raw}
end
local now = now_ms()
if now >= order.expires_at then
  return {'late', raw}
end
if tonumber(ARGV[2]) ~= order.to_pay then
  return {'amount_mismatch', tostring(order.to_pay)}
end
redis.call('ZREM', KEYS[2], ARGV[1])
return {'paid', mark_paid(order, ARGV[3], now), 'fresh'}
