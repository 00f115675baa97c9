-- include: prelude
-- hold_coupon.lua: on Redis Cluster, hold each user's coupon for an order
-- about to be reserved in the sale's slot (another slot than the coupon's).
--
-- KEYS[1] meta  [2] users  [3] used  [4] holds   (the campaign's keys, see keys.rs)
-- ARGV[1] sale id   ARGV[2] how long a hold lasts (ms)
-- ARGV[3] how long the campaign's keys outlive a hold's deadline (ms)
-- then one triple per request, in arrival order: user id, token (unique per
-- request), and '1' when the caller found the user among the holders (a
-- campaign with buckets keeps them in several slots, see buckets.rs), '' to look in KEYS[2]
--
-- A user's coupon is held when it was issued to them, is neither used nor
-- held, and the campaign has not ended: used[user] = 'hold:<sale>:<token>',
-- `holds` gets '<user>:<sale>:<token>' scored by the hold's deadline, and the
-- campaign's use sequence moves by two: the order takes the first as its
-- coupon_seq, its release the second (release_orders.lua adds one), so MySQL
-- orders one coupon's events without the sale's script touching this slot.
-- reserve_order.lua refuses a hold past its deadline; settle_coupon.lua turns
-- a hold into the order's mark or frees it, and lists the overdue ones.
--
-- Returns {'expired'} (the campaign ended) | {deadline, discount, s1, s2, ...}:
-- one s per request, the order's coupon_seq, or 0 when the coupon is not the user's to use.
local meta = redis.call('HMGET', KEYS[1], 'discount', 'use_seq', 'ends_at', 'held_until')
local now = now_ms()
local ends_at = tonumber(meta[3] or '0')
if has_ended(now, ends_at) then
  return {'expired'}
end
local sale = ARGV[1]
local deadline = now + tonumber(ARGV[2])
local seq = tonumber(meta[2] or '0')
local answer = {deadline, tonumber(meta[1] or '0')}
local held = 0
for i = 4, #ARGV, 3 do
  local user, token = ARGV[i], ARGV[i + 1]
  local issued = ARGV[i + 2] == '1' or redis.call('SISMEMBER', KEYS[2], user) == 1
  if meta[1] and issued
      and redis.call('HSETNX', KEYS[3], user, 'hold:' .. sale .. ':' .. token) == 1 then
    redis.call('ZADD', KEYS[4], deadline, user .. ':' .. sale .. ':' .. token)
    seq = seq + 2
    held = held + 1
    answer[#answer + 1] = seq - 1
  else
    answer[#answer + 1] = 0
  end
end
if held > 0 then
  local keep = math.max(tonumber(meta[4] or '0'), deadline + tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], 'use_seq', int(seq), 'held_until', int(keep))
end
return answer
