-- forget_orders.lua: let released orders go from Redis once MySQL has them.
--
-- KEYS[1] orders  [2] released  [3] meta (the sale's keys, or a bucket's)
-- ARGV    order ids MySQL holds as cancelled or expired
--
-- A released order is final (cancelled or expired never changes again), so
-- once MySQL holds it, lookups are answered from there and Redis need not
-- keep it. Each id is deleted only when Redis also has it released (a
-- reserved or paid order under that id is never touched) and leaves
-- `released` either way. The meta's `forgotten` counts them, so retirement
-- still finds Redis's orders + forgotten = MySQL's rows. Returns how many
-- orders were deleted.
local forgotten = 0
for _, id in ipairs(ARGV) do
  local raw = redis.call('HGET', KEYS[1], id)
  if raw and (string.find(raw, '"status":"cancelled"', 1, true) or string.find(raw, '"status":"expired"', 1, true)) then
    redis.call('HDEL', KEYS[1], id)
    forgotten = forgotten + 1
  end
  redis.call('ZREM', KEYS[2], id)
end
if forgotten > 0 then
  redis.call('HINCRBY', KEYS[3], 'forgotten', forgotten)
end
return forgotten
