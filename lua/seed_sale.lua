-- seed_sale.lua: create or replace a sale (window, limits, SKUs with price and stock).
--
-- KEYS[1] meta      {sale:ID}:meta      starts_at, ends_at (ms, 0 = never), per_user_limit (0 = none), hold_ms
-- KEYS[2] prices    {sale:ID}:prices    sku -> price (minor units)
-- KEYS[3] stock     {sale:ID}:stock     sku -> remaining
-- KEYS[4] initial   {sale:ID}:initial   sku -> total ever supplied (seed + top-ups)
-- KEYS[5] bought    {sale:ID}:bought    user -> quantity held (reserved + paid)
-- KEYS[6] orders    {sale:ID}:orders    order id -> order JSON
-- KEYS[7] deadlines {sale:ID}:deadlines zset order id by expiry (ms)
-- KEYS[8] idem      {sale:ID}:idem      user:key -> fingerprint \n first answer
-- KEYS[9] seq       {sale:ID}:seq       last order id
-- KEYS[10] idem_expiry {sale:ID}:idem_expiry  idempotency keys by expiry (ms)
-- KEYS[11] moves  [12] received   (buckets only, see sales/moves.rs)  [13] released
-- ARGV: starts_at, ends_at, per_user_limit, hold_ms, mode ('create' | 'replace'), sale id,
--       buckets (the sale's bucket count; 1 = none), epoch (this seeding's: the same
--       in every bucket, so a stock move of an earlier seeding is refused),
--       then sku, price, stock triples
--       (the stock of this bucket: with buckets the caller seeds each)
--
-- Returns 'created', 'replaced' or 'exists'. The outbox stream is never touched.
-- The registry of live sales (`sales`, which the relay and the expiry task
-- read) is in another slot on Redis Cluster: the caller adds the id before
-- this script and again after it (see `Sales::seed`).
local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists and ARGV[5] ~= 'replace' then
  return 'exists'
end
for i = 1, 9 do
  redis.call('DEL', KEYS[i])
end
redis.call('DEL', KEYS[10], KEYS[11], KEYS[12], KEYS[13])
redis.call('HSET', KEYS[1], 'starts_at', ARGV[1], 'ends_at', ARGV[2], 'per_user_limit', ARGV[3], 'hold_ms', ARGV[4])
if ARGV[7] ~= '1' then
  redis.call('HSET', KEYS[1], 'buckets', ARGV[7], 'epoch', ARGV[8])
end
for i = 9, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 2])
end
if exists then
  return 'replaced'
end
return 'created'
