-- include: prelude, order
-- pay_hold.lua: step 1 of a wallet payment, in the sale's slot: hold a reserved
-- order for the payment, so no confirm, cancel or expiry can take it meanwhile.
--
-- KEYS[1] orders  [2] deadlines  [3] paying  (the sale's keys)
-- ARGV[1] order id  ARGV[2] how long the hold lasts (ms) before the recovery
--   pass settles it
--
-- The hold's deadline names the attempt: the wallet records its debit (or the
-- recovery's void) under `sale:order:deadline`, so a later attempt of the
-- same order never meets an earlier attempt's void.
-- An order already held answers the same hold (a retry continues it).
-- Holding takes the order off the expiry's deadlines; releasing the hold
-- (pay_settle.lua) puts it back, so an order past its deadline then expires.
--
-- Returns {'held', order_json, deadline} | {'paid', order_json} (paid by a
--   wallet) | {'already_paid', order_json} (paid through the gateway)
--   | {'cancelled' | 'expired', order_json} | {'late'} (reserved but past its
--   deadline: the caller releases it as expired) | {'unknown_order'}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return {'unknown_order'}
end
local held = redis.call('ZSCORE', KEYS[3], ARGV[1])
if held then
  return {'held', raw, int(tonumber(held))}
end
local order = decode_order(raw)
local refused = not_payable(order, raw, order.payment_key == 'wallet')
if refused then
  return refused
end
local now = now_ms()
if now >= order.expires_at then
  return {'late'}
end
local deadline = int(now + tonumber(ARGV[2]))
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {'held', raw, deadline}
