-- include: prelude, order
-- pay_settle.lua: step 3 of a wallet payment, in the sale's slot: the wallet
-- debited the order (mark it paid) or refused / voided the debit (release the
-- hold). Only the hold of the attempt named in ARGV[3] is settled.
--
-- KEYS[1] orders  [2] deadlines  [3] paying  [4] outbox  (the sale's keys)
-- KEYS[5] ranking bucket of the current hour (zset sku -> paid orders), absent
--   when it is in another slot (Redis Cluster): the caller bumps it then
--   (the layout of confirm_order.lua: lib/order.lua's mark_paid reads it)
-- ARGV[1] order id  ARGV[2] 'paid' | 'release'  ARGV[3] the hold's deadline
-- ARGV[4] bucket TTL (s)
--
-- 'paid': status paid, payment_key 'wallet' (a gateway confirm of it then answers
--   already_paid), version + 1, ranking bumped, the order appended to the outbox.
-- 'release': the order goes back on the expiry's deadlines, still reserved (an
--   order past its deadline then expires at the expiry's next pass).
-- Paid is decided by the debit: a debit taken before the deadline pays the
-- order even if this step runs after it.
--
-- Returns {'paid', order_json} | {'released', order_json}
--   | {'not_held', order_json} (this attempt holds it no more: settled before)
--   | {'unknown_order'}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'unknown_order'}
end
local held = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not held or tonumber(held) ~= tonumber(ARGV[3]) then
  return {'not_held', raw}
end
redis.call('ZREM', KEYS[3], ARGV[1])
local order = decode_order(raw)
if ARGV[2] == 'release' then
  redis.call('ZADD', KEYS[2], int(order.expires_at), ARGV[1])
  return {'released', raw}
end
return {'paid', mark_paid(order, 'wallet', now_ms())}
