-- ack_outbox.lua: forget outbox entries Kafka has acknowledged.
--
-- KEYS[1]  outbox stream  {coupon:ID}:outbox
-- ARGV[1]  consumer group
-- ARGV[2..] entry ids
--
-- XACK and XDEL together, so an entry is never acknowledged yet kept, nor
-- deleted yet still pending. Ids go in slices: Lua's unpack() takes a few
-- thousand values at most. Returns the number of entries deleted.
local deleted = 0
local slice = {}
local function flush()
  if #slice > 0 then
    redis.call('XACK', KEYS[1], ARGV[1], unpack(slice))
    deleted = deleted + redis.call('XDEL', KEYS[1], unpack(slice))
    slice = {}
  end
end
for i = 2, #ARGV do
  slice[#slice + 1] = ARGV[i]
  if #slice == 1000 then
    flush()
  end
end
flush()
return deleted
