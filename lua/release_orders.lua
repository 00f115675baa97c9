-- include: prelude, order
-- release_orders.lua: cancel one reserved order, or expire every overdue one.
--
-- KEYS[1] stock  [2] bought  [3] orders  [4] deadlines  [5] outbox
-- KEYS[6] idem  [7] idem_expiry  [8] paying  [9] coupon_returns  [10] released (the sale's keys)
-- ARGV[1] mode: 'cancel' or 'expire'
-- ARGV[2] coupon key prefix, e.g. 'fs:{coupon:' (the coupon id and '}:used' / '}:meta' are appended),
--         or '' on Redis Cluster, where the coupon lives in another slot (see below)
-- ARGV[3] order id (cancel) or most orders to expire in this call (expire)
--
-- Releasing gives back each SKU's stock, the user's per-sale quantity and the
-- coupon (only when its used-mark names this order: a mark of another order,
-- e.g. after the sale was replaced, is not this order's to free), sets the status, bumps the order's version and appends it to the outbox.
-- A released order is listed in `released` by time, to be forgotten once MySQL
-- has it (forget_orders.lua).
-- A reserved order past its deadline is released as 'expired' whichever mode
-- found it, so a cancel, a confirm and the expiry task never disagree.
--
-- An order a wallet payment holds (KEYS[8]) is left alone: cancel answers it
-- unchanged, still 'reserved' (the service tells the caller a payment is under
-- way); the expiry never meets one (holding takes it off the deadlines).
--
-- cancel returns {status, order_json} with the status after the call
--   ('cancelled', or 'paid' / 'expired' when it was already so) | {'unknown_order'}
-- expire returns {released_count, forgotten_count}: it also deletes up to the
--   same number of idempotency answers past their expiry (see reserve_order.lua)
-- On one node the coupon's used-mark (under another hash tag) is freed here.
-- On Redis Cluster (ARGV[2] = '') it cannot be: the order's coupon goes to
-- coupon_returns ('<coupon>:<user>:<order>' by time) for the service to give
-- back in the coupon's slot (settle_coupon.lua) and then remove, and the event
-- carries coupon_seq + 1, the sequence number hold_coupon.lua kept for it.
-- Expire then also answers how many returns wait: {released, forgotten, waiting}.
local now = now_ms()

local function release(id, status)
  local raw = redis.call('HGET', KEYS[3], id)
  if not raw then
    return nil
  end
  local order = decode_order(raw)
  if order.status ~= 'reserved' or redis.call('ZSCORE', KEYS[8], id) then
    return order, raw, false
  end
  if now >= order.expires_at then
    status = 'expired'
  end
  local quantity = 0
  for _, item in ipairs(order.items) do
    redis.call('HINCRBY', KEYS[1], item.sku, item.quantity)
    quantity = quantity + item.quantity
  end
  if redis.call('HINCRBY', KEYS[2], order.user_id, -quantity) <= 0 then
    redis.call('HDEL', KEYS[2], order.user_id)
  end
  if order.coupon_id ~= cjson.null and ARGV[2] == '' then
    redis.call('ZADD', KEYS[9], now, tostring(order.coupon_id) .. ':' .. tostring(order.user_id) .. ':' .. id)
    if order.coupon_seq ~= cjson.null then
      order.coupon_seq = order.coupon_seq + 1
    end
  elseif order.coupon_id ~= cjson.null then
    local used = ARGV[2] .. order.coupon_id .. '}:used'
    if redis.call('HGET', used, order.user_id) == order.sale_id .. ':' .. id then
      redis.call('HDEL', used, order.user_id)
      order.coupon_seq = redis.call('HINCRBY', ARGV[2] .. order.coupon_id .. '}:meta', 'use_seq', 1)
    end
  end
  order.status = status
  local json = next_version(order, now)
  redis.call('HSET', KEYS[3], id, json)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZADD', KEYS[10], now, id)
  redis.call('XADD', KEYS[5], '*', 'order', json)
  return order, json, true
end

if ARGV[1] == 'cancel' then
  local order, json = release(ARGV[3], 'cancelled')
  if not order then
    return {'unknown_order'}
  end
  return {order.status, json}
end

local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local released = 0
for _, id in ipairs(due) do
  local _, _, changed = release(id, 'expired')
  if changed then
    released = released + 1
  else
    redis.call('ZREM', KEYS[4], id)
  end
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
if #stale > 0 then
  redis.call('HDEL', KEYS[6], unpack(stale))
  redis.call('ZREM', KEYS[7], unpack(stale))
end
if ARGV[2] == '' then
  return {released, #stale, redis.call('ZCARD', KEYS[9])}
end
return {released, #stale}
