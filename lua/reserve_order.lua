-- include: prelude
-- reserve_order.lua: reserve multi-SKU orders of one sale, each atomically.
--
-- KEYS[1] meta  [2] prices  [3] stock  [4] bought  [5] orders  [6] deadlines
-- KEYS[7] idem  [8] seq     [9] outbox  [10] idem_expiry  [11] coupon_holds
--          (the sale's keys, see seed_sale.lua)
-- KEYS[12] queue_admitted (the sale's waiting room: user -> admitted until, ms)
-- KEYS[13] coupon meta  [14] coupon users  [15] coupon used (user -> "sale:order"), only with a
--          coupon here (absent when none, or held apart)
-- ARGV[1] sale id   ARGV[2] coupon id ('' = none), the same for every request of the call
-- ARGV[3] how long an idempotency key's answer is replayed (ms)
-- ARGV[4] the coupon's mode: 'here' (its keys are KEYS[13..15]: one node) or
--         'held' (Redis Cluster: the coupon lives in another slot, and the service
--         held it for each request first, see hold_coupon.lua)
-- ARGV[5] held: the coupon's discount   ARGV[6] held: the holds' deadline (ms)
-- ARGV[7] the sale's bucket count as the caller believes it (see sales/moves.rs;
--         1 = none): another than the meta's is refused, every answer {'buckets', n}
-- ARGV[8] this bucket's number: with buckets, order ids are made = it modulo the count
-- ARGV[9] how many requests follow
-- ARGV[10] most orders one user may make in the sale (0 = no cap), cancelled and
--          expired ones included: counted in `bought` under 'n:' .. user
-- then one record per request, in arrival order (the service batches concurrent
-- requests for one sale and coupon campaign into one call):
--   user id, idempotency key ('' = none), request fingerprint, '1' when the
--   caller showed a valid admission ('0' not), number of lines n,
--   then n sku, quantity pairs (distinct skus),
--   then, held only: the hold's token ('' = not held) and the order's
--   coupon_seq (when not held: the answer instead, 'coupon_unavailable' or 'coupon_expired')
--
-- Checks per request, in order: idempotency key (replay or mismatch), sale exists,
-- window open, with a waiting room the caller showed an admission and Redis
-- holds it for the user unlapsed (a reservation uses it up), the user's orders
-- made stay under ARGV[10], every SKU exists, every SKU has the stock, the user's total stays
-- within the per-user limit, the coupon was issued to this user and is unused,
-- and the coupon's campaign has not ended (held: the request holds it, and the
-- hold's deadline has not passed, else {'hold_lapsed'}: then nothing happened).
-- Only then: decrement each SKU, add to the user's total, mark the coupon used,
-- store the order (status reserved, deadline), register the deadline, remember
-- the answer under the idempotency key, and append the order to the outbox.
-- An answer remembered under an idempotency key is `~expires_at~fingerprint\n
-- answer` (entries written before answers expired lack the `~expires_at~`
-- part and last as long as the sale); `idem_expiry` lists each key by its
-- expiry so the expiry task deletes it then (release_orders.lua). Past its
-- expiry a key counts as new even before that.
-- Held, the order's id is recorded under the hold's token in coupon_holds
-- (token -> order, and 'o:'..order -> token) for settle_coupon.lua's callers.
-- With a coupon here, the coupon's meta keeps `held_until`, the latest deadline of
-- an order that took it: its keys are not deleted before (drop_retired.lua).
-- The call's new orders share one outbox entry: field `order` (one order's
-- record) when there is one, `orders` (the records, one per line, in order)
-- when several. A new order's record is packed (see lib/order.lua's
-- decode_order): a fifth of its JSON, for Redis to copy and store.
-- Requests are served one after the other: each sees what the earlier ones took.
-- Reads are made once per call and mirrored locally; writes, the outbox entry
-- too, are gathered and made once per call at the end (one command per key,
-- not per order): the script is atomic, so nothing sees the gap, and Redis and
-- its AOF get a few commands per call instead of ~9 per order.
--
-- Returns one answer per request, in order, each one of
--   {'reserved', order_record} | {'replay', first_answer_record} | {'idem_mismatch'}
--   | {'unknown_sale'} | {'not_started'} | {'ended'} | {'unknown_sku', 'sku,sku'}
--   | {'sold_out', 'sku,sku'} | {'limit_exceeded', left} | {'coupon_unavailable'}
--   | {'coupon_expired'} | {'hold_lapsed'} | {'too_many_orders', cap} | {'not_admitted'}
-- Ids travel as text in the order record: Lua numbers are doubles.
--
-- Order ids: max(last id + 1, now in ms * 1000), with N buckets the next one
-- that is the bucket's number modulo N (so an id names its bucket; a bucket
-- keeps up with the clock up to 1000 / N orders per ms).
-- With buckets the per-user limit is checked before the stock: a request the
-- limit refuses must not make the service move stock for it (sales/moves.rs). They grow on one primary, and
-- they follow the clock, so an id once answered names no other order even after
-- the sale's keys were replaced (`sale create --replace`), rebuilt from MySQL
-- (`stock load`) or rolled back by a failover to a replica that missed the last
-- orders: the new ones are made later, so they are larger. Below 2^53 (until
-- the year 2255): exact in a Lua double and in a JavaScript number.
local sale, coupon = ARGV[1], ARGV[2]
local coupon_held = ARGV[4] == 'held'

-- Shared by every request of the call: the window, prices, the coupon's discount.
local meta = redis.call('HMGET', KEYS[1], 'starts_at', 'ends_at', 'per_user_limit', 'hold_ms', 'buckets', 'queue_rate')
local queued = meta[6] ~= false
local buckets = tonumber(meta[5] or '1')
if meta[1] and buckets ~= tonumber(ARGV[7]) then
  -- The caller routed by a stale count: its users' homes may be wrong.
  local refused = {}
  for _ = 1, tonumber(ARGV[9]) do
    refused[#refused + 1] = {'buckets', tostring(buckets)}
  end
  return refused
end
local bucket = tonumber(ARGV[8])
local closed = nil
local now = now_ms()
if not meta[1] then
  closed = 'unknown_sale'
else
  closed = closed_at(now, tonumber(meta[1]), tonumber(meta[2]))
end
local prices, price_texts, stock, taken = {}, {}, {}, {}
local function price_of(sku)
  local price = prices[sku]
  if price == nil then
    local text = redis.call('HGET', KEYS[2], sku)
    price = text and tonumber(text) or false
    prices[sku], price_texts[sku] = price, text
  end
  return price
end
-- A reader that reads each field once per call, keeps the value in `cache`,
-- and from then on answers from it; the call keeps `cache` in step with its
-- own writes, so every request sees what the earlier ones did.
local function memo(cache, read)
  return function(field)
    local value = cache[field]
    if value == nil then
      value = read(field)
      cache[field] = value
    end
    return value
  end
end
-- Stock per SKU, units bought and orders made per user, the coupon's use per user, the
-- answers remembered per idempotency key.
local bought, used, idem, made = {}, {}, {}, {}
local max_orders = tonumber(ARGV[10])
local stock_of = memo(stock, function(sku) return tonumber(redis.call('HGET', KEYS[3], sku) or '0') end)
-- A user's units held and orders made live in one hash: every user's of
-- the call read in one HMGET before the first request (load_users, below).
local function load_users(users)
  local fields = {}
  for _, user in ipairs(users) do
    if bought[user] == nil then
      bought[user] = false
      fields[#fields + 1] = user
      fields[#fields + 1] = 'n:' .. user
    end
  end
  for from = 1, #fields, 1000 do
    local to = math.min(from + 999, #fields)
    local values = redis.call('HMGET', KEYS[4], unpack(fields, from, to))
    for k = 1, to - from + 1, 2 do
      local user = fields[from + k - 1]
      bought[user], made[user] = tonumber(values[k] or '0'), tonumber(values[k + 1] or '0')
    end
  end
end
local used_by = memo(used, function(user) return redis.call('HEXISTS', KEYS[15], user) == 1 end)
local idem_of = memo(idem, function(key) return redis.call('HGET', KEYS[7], key) or false end)
local seq, seq_start = nil, nil
local coupon_seq_next, coupon_seq_start, discount_of_coupon, coupon_ended = nil, nil, nil, false
local coupon_held_until = 0
-- What the call writes at its end, one command per key.
local new_orders, new_deadlines, new_idem, new_idem_expiry, new_used, new_events = {}, {}, {}, {}, {}, {}
local new_holds = {}
-- With a queue: each user's admission (until, ms; 0 none or used), and those used.
local admission, admissions_used = {}, {}
local idem_ttl = tonumber(ARGV[3])
local limit = tonumber(meta[3] or '0')
-- Every order of the call is made at `now`: its times as text, once.
local created, expires_ms = int(now), now + tonumber(meta[4] or '0')
local expires_at = int(expires_ms)

-- (fingerprint, answer) remembered under an idempotency key, or nil when
-- none is or it expired.
local function remembered(value)
  if not value then
    return nil
  end
  if string.sub(value, 1, 1) == '~' then
    local close = string.find(value, '~', 2, true)
    if tonumber(string.sub(value, 2, close - 1)) <= now then
      return nil
    end
    value = string.sub(value, close + 1)
  end
  local sep = string.find(value, '\n', 1, true)
  return string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
end
-- Users whose units bought changed (a set: one may buy twice in a call).
local bought_changed = {}

local function reserve(user, idem_key, fingerprint, shown, first, n, token, held_seq)
  if idem_key ~= '' then
    local prior_fingerprint, prior_answer = remembered(idem_of(idem_key))
    if prior_fingerprint then
      if prior_fingerprint == fingerprint then
        return {'replay', prior_answer}
      end
      return {'idem_mismatch'}
    end
  end
  if closed then
    return {closed}
  end
  if queued then
    if admission[user] == nil then
      admission[user] = tonumber(redis.call('ZSCORE', KEYS[12], user) or '0')
    end
    if not shown or admission[user] <= now then
      return {'not_admitted'}
    end
  end
  local orders_made = made[user]
  if max_orders > 0 and orders_made >= max_orders then
    return {'too_many_orders', ARGV[10]}
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
  local held = bought[user]
  local over = limit > 0 and held + quantity > limit
  if over and buckets > 1 then
    return {'limit_exceeded', tostring(limit - held)}
  end
  if #short > 0 then
    return {'sold_out', table.concat(short, ',')}
  end
  if over then
    return {'limit_exceeded', tostring(limit - held)}
  end

  local discount = 0
  if coupon_held then
    if token == '' then
      return {held_seq}
    end
    if now >= tonumber(ARGV[6]) then
      return {'hold_lapsed'}
    end
    discount = tonumber(ARGV[5])
    if discount > total then
      discount = total
    end
  elseif coupon ~= '' then
    if redis.call('SISMEMBER', KEYS[14], user) == 0 or used_by(user) then
      return {'coupon_unavailable'}
    end
    if discount_of_coupon == nil then
      local c = redis.call('HMGET', KEYS[13], 'discount', 'use_seq', 'ends_at', 'held_until')
      discount_of_coupon = tonumber(c[1] or '0')
      coupon_seq_start = tonumber(c[2] or '0')
      coupon_seq_next = coupon_seq_start
      coupon_held_until = tonumber(c[4] or '0')
      local coupon_ends = tonumber(c[3] or '0')
      coupon_ended = has_ended(now, coupon_ends)
    end
    if coupon_ended then
      return {'coupon_expired'}
    end
    discount = discount_of_coupon
    if discount > total then
      discount = total
    end
  end

  local lines = {}
  for k, item in ipairs(items) do
    stock[item.sku] = stock[item.sku] - item.quantity
    taken[item.sku] = (taken[item.sku] or 0) + item.quantity
    lines[k] = item.sku .. ':' .. item.quantity_text .. ':' .. price_texts[item.sku]
  end
  bought_changed[user] = true
  bought[user] = held + quantity
  made[user] = orders_made + 1
  if seq == nil then
    seq_start = tonumber(redis.call('GET', KEYS[8]) or '0')
    seq = seq_start
  end
  seq = math.max(seq + 1, now * 1000)
  if buckets > 1 then
    seq = seq + (bucket - seq) % buckets
  end
  local id = int(seq)
  -- coupon_seq orders every change of this coupon's use (taken or given back),
  -- so MySQL can tell the newer of two events however close in time.
  local coupon_seq = ''
  if coupon_held then
    coupon_seq = held_seq
    new_holds[#new_holds + 1] = token
    new_holds[#new_holds + 1] = id
    new_holds[#new_holds + 1] = 'o:' .. id
    new_holds[#new_holds + 1] = token
  elseif coupon ~= '' then
    used[user] = true
    new_used[#new_used + 1] = user
    new_used[#new_used + 1] = sale .. ':' .. id
    coupon_seq_next = coupon_seq_next + 1
    coupon_seq = int(coupon_seq_next)
  end
  if coupon ~= '' and not coupon_held then
    coupon_held_until = math.max(coupon_held_until, expires_ms)
  end
  -- The order, packed (lib/order.lua's decode_order and src/order/packed.rs
  -- read it): every field a decimal string the service passed or Redis
  -- counted, so none holds a separator.
  -- A one-unit line's total is its price: no number to format.
  local total_text = (#items == 1 and items[1].quantity == 1) and price_texts[items[1].sku] or int(total)
  local record = 'R|' .. id .. '|' .. sale .. '|' .. user .. '|' .. total_text .. '|' .. (discount == 0 and '0' or int(discount))
    .. '|' .. coupon .. '|' .. coupon_seq .. '|' .. created .. '|' .. expires_at .. '|' .. table.concat(lines, ',')
  new_orders[#new_orders + 1] = id
  new_orders[#new_orders + 1] = record
  new_deadlines[#new_deadlines + 1] = expires_at
  new_deadlines[#new_deadlines + 1] = id
  if idem_key ~= '' then
    local idem_expires = int(now + idem_ttl)
    local answer = '~' .. idem_expires .. '~' .. fingerprint .. '\n' .. record
    idem[idem_key] = answer
    new_idem[#new_idem + 1] = idem_key
    new_idem[#new_idem + 1] = answer
    new_idem_expiry[#new_idem_expiry + 1] = idem_expires
    new_idem_expiry[#new_idem_expiry + 1] = idem_key
  end
  new_events[#new_events + 1] = record
  if queued then
    admission[user] = 0
    admissions_used[#admissions_used + 1] = user
  end
  return {'reserved', record}
end

-- `command key args...` in slices (unpack has a stack limit).
local function write_many(command, key, args)
  for from = 1, #args, 1000 do
    redis.call(command, key, unpack(args, from, math.min(from + 999, #args)))
  end
end

-- The requests' users, read in one HMGET (a request of a closed sale reads nothing).
if not closed then
  local users = {}
  local at = 11
  while at <= #ARGV do
    users[#users + 1] = ARGV[at]
    at = at + 5 + 2 * tonumber(ARGV[at + 4]) + (coupon_held and 2 or 0)
  end
  load_users(users)
end

local answers = {}
local i = 11
while i <= #ARGV do
  local shown = ARGV[i + 3] == '1'
  local n = tonumber(ARGV[i + 4])
  local after = i + 5 + 2 * n
  if coupon_held then
    answers[#answers + 1] = reserve(ARGV[i], ARGV[i + 1], ARGV[i + 2], shown, i + 5, n, ARGV[after], ARGV[after + 1])
    after = after + 2
  else
    answers[#answers + 1] = reserve(ARGV[i], ARGV[i + 1], ARGV[i + 2], shown, i + 5, n)
  end
  i = after
end

for sku, q in pairs(taken) do
  redis.call('HINCRBY', KEYS[3], sku, int(-q))
end
if seq ~= nil and seq > seq_start then
  redis.call('SET', KEYS[8], int(seq))
end
local bought_pairs = {}
for user in pairs(bought_changed) do
  bought_pairs[#bought_pairs + 1] = user
  bought_pairs[#bought_pairs + 1] = int(bought[user])
  bought_pairs[#bought_pairs + 1] = 'n:' .. user
  bought_pairs[#bought_pairs + 1] = int(made[user])
end
write_many('HSET', KEYS[4], bought_pairs)
write_many('HSET', KEYS[5], new_orders)
write_many('ZADD', KEYS[6], new_deadlines)
write_many('HSET', KEYS[7], new_idem)
write_many('ZADD', KEYS[10], new_idem_expiry)
write_many('ZREM', KEYS[12], admissions_used)
if #new_events == 1 then
  redis.call('XADD', KEYS[9], '*', 'order', new_events[1])
elseif #new_events > 1 then
  redis.call('XADD', KEYS[9], '*', 'orders', table.concat(new_events, '\n'))
end
if coupon_held then
  write_many('HSET', KEYS[11], new_holds)
elseif coupon ~= '' then
  write_many('HSET', KEYS[15], new_used)
  if coupon_seq_next ~= nil and coupon_seq_next > coupon_seq_start then
    -- The script is atomic: setting the sequence is adding to it.
    redis.call('HSET', KEYS[13], 'use_seq', int(coupon_seq_next), 'held_until', int(coupon_held_until))
  end
end
return answers
