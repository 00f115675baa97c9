-- sale_info.lua: one consistent snapshot of a sale.
--
-- KEYS[1] meta  [2] prices  [3] stock  [4] initial  [5] outbox
-- Returns {} when the sale is unknown, else
--   {starts_at, ends_at, per_user_limit, hold_ms, outbox_len, buckets, sku, price, remaining, initial, sku, ...}
-- (of this bucket, for a sale with buckets: see sales/moves.rs)
local meta = redis.call('HMGET', KEYS[1], 'starts_at', 'ends_at', 'per_user_limit', 'hold_ms', 'buckets')
if not meta[1] then
  return {}
end
local out = {tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4]), redis.call('XLEN', KEYS[5]),
  tonumber(meta[5] or '1')}
local prices = redis.call('HGETALL', KEYS[2])
for i = 1, #prices, 2 do
  local sku = prices[i]
  out[#out + 1] = sku
  out[#out + 1] = tonumber(prices[i + 1])
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[3], sku) or '0')
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[4], sku) or '0')
end
return out
