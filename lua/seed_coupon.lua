-- seed_coupon.lua: create or replace a campaign in Redis.
--
-- KEYS[1]  campaign hash  {coupon:ID}:meta
-- KEYS[2]  issued users   {coupon:ID}:users
-- KEYS[3]  used marks     {coupon:ID}:used
-- ARGV[1]  total quantity
-- ARGV[2]  starts_at (ms since epoch)
-- ARGV[3]  ends_at (ms since epoch, 0 = never)
-- ARGV[4]  mode: 'create' (fail if it exists) or 'replace' (reset stock, users and used marks)
-- ARGV[5]  discount an order gets with this coupon (minor units)
-- ARGV[6]  campaign id
-- ARGV[7]  the campaign's bucket count N (1: not bucketed); the keys are one
--          bucket's and ARGV[1] its share (see buckets.rs). 'replace' refuses
--          another N than the campaign has: 'buckets_differ'
--
-- A replaced campaign is live again: it loses `retired_at` (see retire.lua).
-- Returns 'created', 'replaced' or 'exists'. The outbox is left alone on replace:
-- entries still on their way to Kafka belong to the old campaign and must arrive.
-- The registry of live campaigns (`coupons`, which the relay reads) is in
-- another slot on Redis Cluster: the caller adds the id before this script
-- and again after it (see `Coupons::seed`), so no campaign exists whose outbox
-- the relay does not read.
local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists and ARGV[4] ~= 'replace' then
  return 'exists'
end
if exists and (redis.call('HGET', KEYS[1], 'buckets') or '1') ~= ARGV[7] then
  return 'buckets_differ'
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[1], 'retired_at')
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'remaining', ARGV[1], 'starts_at', ARGV[2], 'ends_at', ARGV[3], 'discount', ARGV[5])
if ARGV[7] ~= '1' then
  redis.call('HSET', KEYS[1], 'buckets', ARGV[7])
end
if exists then
  return 'replaced'
end
return 'created'
