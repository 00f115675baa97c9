-- Removes a relay's consumer from an outbox stream's group, but only while
-- it holds no pending entry: XGROUP DELCONSUMER drops a consumer's pending
-- entries, which would then never be relayed. Checked and done atomically, so
-- a relay that comes back between the two cannot lose what it reads.
-- KEYS[1] the outbox stream; ARGV[1] the group; ARGV[2] the consumer.
-- Returns 1 when removed, 0 when it holds entries.
local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #held > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
