-- reserve_order.lua: reserve multi-SKU orders of one sale, each atomically.
--
-- KEYS[1] meta  [2] prices  [3] stock  [4] bought  [5] orders  [6] deadlines
-- KEYS[7] idem  [8] seq     [9] outbox (the sale's keys, see seed_sale.lua)
-- KEYS[10] coupon meta  [11] coupon users  [12] coupon used (user -> "sale:order"), only with a coupon
-- ARGV[1] sale id   ARGV[2] coupon id ('' = none), the same for every request of the call
-- then one record per request, in arrival order (the service batches concurrent
-- requests for one sale and coupon campaign into one call):
--   user id, idempotency key ('' = none), request fingerprint, number of lines n,
--   then n sku, quantity pairs (distinct skus)
--
-- Checks per request, in order: idempotency key (replay or mismatch), sale exists,
-- window open, every SKU exists, every SKU has the stock, the user's total stays
-- within the per-user limit, the coupon was issued to this user and is unused.
-- Only then: decrement each SKU, add to the user's total, mark the coupon used,
-- store the order (status reserved, deadline), register the deadline, remember
-- the answer under the idempotency key, and append the order to the outbox.
-- Requests are served one after the other: each sees what the earlier ones took.
--
-- Returns one answer per request, in order, each one of
--   {'reserved', order_json} | {'replay', first_answer_json} | {'idem_mismatch'}
--   | {'unknown_sale'} | {'not_started'} | {'ended'} | {'unknown_sku', 'sku,sku'}
--   | {'sold_out', 'sku,sku'} | {'limit_exceeded', left} | {'coupon_unavailable'}
-- Ids travel as strings in the order JSON: Lua numbers are doubles.
local sale, coupon = ARGV[1], ARGV[2]

-- Shared by every request of the call: the window, prices, the coupon's discount.
local meta = redis.call('HMGET', KEYS[1], 'starts_at', 'ends_at', 'per_user_limit', 'hold_ms')
local closed, now = nil, 0
if not meta[1] then
  closed = 'unknown_sale'
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local ends_at = tonumber(meta[2])
  if now < tonumber(meta[1]) then
    closed = 'not_started'
  elseif ends_at > 0 and now >= ends_at then
    closed = 'ended'
  end
end
-- Integers go out as text through '%d': formatting a Lua number (a double)
-- any other way takes the slow floating-point path, several times per order.
local function int(n)
  return string.format('%d', n)
end
local prices, price_texts, stock = {}, {}, {}
local function price_of(sku)
  local price = prices[sku]
  if price == nil then
    local text = redis.call('HGET', KEYS[2], sku)
    price = text and tonumber(text) or false
    prices[sku], price_texts[sku] = price, text
  end
  return price
end
-- Stock as this call last left it: read once, then kept in step with its own writes.
local function stock_of(sku)
  local left = stock[sku]
  if left == nil then
    left = tonumber(redis.call('HGET', KEYS[3], sku) or '0')
    stock[sku] = left
  end
  return left
end
local discount_of_coupon = nil

local function reserve(user, idem_key, fingerprint, first, n)
  if idem_key ~= '' then
    local prior = redis.call('HGET', KEYS[7], idem_key)
    if prior then
      local sep = string.find(prior, '\n', 1, true)
      if string.sub(prior, 1, sep - 1) == fingerprint then
        return {'replay', string.sub(prior, sep + 1)}
      end
      return {'idem_mismatch'}
    end
  end
  if closed then
    return {closed}
  end

  local items, unknown, short = {}, {}, {}
  local total, quantity = 0, 0
  for i = 0, n - 1 do
    local sku, q_text = ARGV[first + 2 * i], ARGV[first + 2 * i + 1]
    local q = tonumber(q_text)
    local price = price_of(sku)
    if not price then
      unknown[#unknown + 1] = sku
    else
      if stock_of(sku) < q then
        short[#short + 1] = sku
      end
      items[#items + 1] = {sku = sku, quantity = q, quantity_text = q_text, price = price}
      total = total + price * q
      quantity = quantity + q
    end
  end
  if #unknown > 0 then
    return {'unknown_sku', table.concat(unknown, ',')}
  end
  if #short > 0 then
    return {'sold_out', table.concat(short, ',')}
  end
  local limit = tonumber(meta[3])
  local held = tonumber(redis.call('HGET', KEYS[4], user) or '0')
  if limit > 0 and held + quantity > limit then
    return {'limit_exceeded', tostring(limit - held)}
  end

  local discount = 0
  if coupon ~= '' then
    if redis.call('SISMEMBER', KEYS[11], user) == 0 or redis.call('HEXISTS', KEYS[12], user) == 1 then
      return {'coupon_unavailable'}
    end
    if discount_of_coupon == nil then
      discount_of_coupon = tonumber(redis.call('HGET', KEYS[10], 'discount') or '0')
    end
    discount = discount_of_coupon
    if discount > total then
      discount = total
    end
  end

  local lines = {}
  for k, item in ipairs(items) do
    redis.call('HINCRBY', KEYS[3], item.sku, '-' .. item.quantity_text)
    stock[item.sku] = stock[item.sku] - item.quantity
    lines[k] = '{"sku":"' .. item.sku .. '","quantity":' .. item.quantity_text .. ',"price":' .. price_texts[item.sku] .. '}'
  end
  redis.call('HINCRBY', KEYS[4], user, int(quantity))
  local id = int(redis.call('INCR', KEYS[8]))
  -- coupon_seq orders every change of this coupon's use (taken or given back),
  -- so MySQL can tell the newer of two events however close in time.
  local coupon_seq = 'null'
  if coupon ~= '' then
    redis.call('HSET', KEYS[12], user, sale .. ':' .. id)
    coupon_seq = int(redis.call('HINCRBY', KEYS[10], 'use_seq', 1))
  end
  local created, expires_at = int(now), int(now + tonumber(meta[4]))
  -- The order as the other scripts (cjson) and the service read it; every id
  -- is a decimal string the service passed or Redis counted, so it needs no escaping.
  local json = '{"order_id":"' .. id .. '","sale_id":"' .. sale .. '","user_id":"' .. user
    .. '","status":"reserved","items":[' .. table.concat(lines, ',') .. '],"total":' .. int(total)
    .. ',"discount":' .. int(discount) .. ',"to_pay":' .. int(total - discount)
    .. ',"coupon_id":' .. (coupon ~= '' and ('"' .. coupon .. '"') or 'null') .. ',"coupon_seq":' .. coupon_seq
    .. ',"payment_key":null,"created_at":' .. created .. ',"expires_at":' .. expires_at
    .. ',"updated_at":' .. created .. ',"version":1}'
  redis.call('HSET', KEYS[5], id, json)
  redis.call('ZADD', KEYS[6], expires_at, id)
  if idem_key ~= '' then
    redis.call('HSET', KEYS[7], idem_key, fingerprint .. '\n' .. json)
  end
  redis.call('XADD', KEYS[9], '*', 'order', json)
  return {'reserved', json}
end

local answers = {}
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i + 3])
  answers[#answers + 1] = reserve(ARGV[i], ARGV[i + 1], ARGV[i + 2], i + 4, n)
  i = i + 4 + 2 * n
end
return answers
