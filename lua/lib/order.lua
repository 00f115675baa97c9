-- lib/order.lua: an order record's changes, shared by the order scripts
-- (`-- include: order`, after `prelude` where the script uses it).
-- mark_paid reads the payment scripts' common layout (confirm_order.lua,
-- pay_settle.lua): KEYS[1] orders  [2] deadlines  [3] paying  [4] outbox
-- [5] ranking bucket (absent: bumped by the caller); ARGV[1] order id  [4] bucket TTL (s).

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
