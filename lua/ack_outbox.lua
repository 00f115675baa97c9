-- ack_outbox.lua: forget outbox entries Kafka has acknowledged.
--
-- KEYS[1]  outbox stream  {coupon:ID}:outbox
-- ARGV[1]  consumer group
-- ARGV[2..] entry ids
--
-- XACK and XDEL together, so an entry is never acknowledged yet kept, nor
-- deleted yet still pending. Returns the number of entries deleted.
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
if #ids == 0 then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
return redis.call('XDEL', KEYS[1], unpack(ids))
