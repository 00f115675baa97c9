-- lib/order.lua: an order record's changes, shared by the order scripts
-- (`-- include: order`, after `prelude` where the script uses it).
-- mark_paid reads the payment scripts' common layout (confirm_order.lua,
-- pay_settle.lua): KEYS[1] orders  [2] deadlines  [3] paying  [4] outbox
-- [5] ranking bucket (absent: bumped by the caller); ARGV[1] order id  [4] bucket TTL (s).

-- `text` split at each `sep` (one character), empty parts kept.
local function split(text, sep)
  local parts, from = {}, 1
  while true do
    local at = string.find(text, sep, from, true)
    if not at then
      parts[#parts + 1] = string.sub(text, from)
      return parts
    end
    parts[#parts + 1] = string.sub(text, from, at - 1)
    from = at + 1
  end
end

-- A stored order as a table, the shape cjson gives: reserve_order.lua stores
-- a new order packed, `R|order|sale|user|total|discount|coupon|coupon_seq|
-- created|expires|sku:quantity:price,...` (coupon, coupon_seq '' = none;
-- reserved, version 1: src/order/packed.rs reads it too); every later version is JSON.
local function decode_order(raw)
  if string.sub(raw, 1, 2) ~= 'R|' then
    return cjson.decode(raw)
  end
  local f = split(raw, '|')
  local items = {}
  for k, line in ipairs(split(f[11], ',')) do
    local item = split(line, ':')
    items[k] = {sku = item[1], quantity = tonumber(item[2]), price = tonumber(item[3])}
  end
  local total, discount, created = tonumber(f[5]), tonumber(f[6]), tonumber(f[9])
  return {
    order_id = f[2], sale_id = f[3], user_id = f[4], status = 'reserved', items = items,
    total = total, discount = discount, to_pay = total - discount,
    coupon_id = f[7] ~= '' and f[7] or cjson.null, coupon_seq = f[8] ~= '' and tonumber(f[8]) or cjson.null,
    payment_key = cjson.null, created_at = created, expires_at = tonumber(f[10]), updated_at = created, version = 1,
  }
end

-- The order's next version as of `now` (its status set by the caller): the
-- JSON to store and to append to the outbox.
local function next_version(order, now)
  order.updated_at = now
  order.version = order.version + 1
  return cjson.encode(order)
end

-- Why a stored order cannot be paid: {'paid', raw} (paid before by this same
-- payment: `same_payment`), {'already_paid', raw} (by another),
-- {'cancelled' | 'expired', raw}; nil while it is reserved.
local function not_payable(order, raw, same_payment)
  if order.status == 'paid' then
    if same_payment then
      return {'paid', raw}
    end
    return {'already_paid', raw}
  end
  if order.status ~= 'reserved' then
    return {order.status, raw}
  end
  return nil
end

-- Marks the order ARGV[1] paid by `payment_key` at `now`: stores it, bumps
-- the hour's ranking for each SKU (unless no bucket was passed: the caller
-- bumps it, Redis Cluster) and appends the order to the outbox. Returns its JSON.
local function mark_paid(order, payment_key, now)
  order.status = 'paid'
  order.payment_key = payment_key
  local json = next_version(order, now)
  redis.call('HSET', KEYS[1], ARGV[1], json)
  if KEYS[5] then
    for _, item in ipairs(order.items) do
      redis.call('ZINCRBY', KEYS[5], 1, item.sku)
    end
    redis.call('EXPIRE', KEYS[5], tonumber(ARGV[4]))
  end
  redis.call('XADD', KEYS[4], '*', 'order', json)
  return json
end
