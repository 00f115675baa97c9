-- join_outbox.lua: give a live campaign's or sale's outbox the relay's consumer group.
--
-- KEYS[1] meta    {coupon:ID}:meta or {sale:ID}:meta
-- KEYS[2] outbox  {coupon:ID}:outbox or {sale:ID}:outbox
-- ARGV[1] consumer group
--
-- Creates the group (and the stream, empty) reading from 0, so no entry is
-- skipped; a group that exists is left as it is. Only while the meta exists:
-- a relay that listed a campaign or sale just before it retired never brings
-- back the outbox stream retirement deleted (its keys go in one step).
-- Returns 1 when the stream has the group, 0 when the owner is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local created = redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[1], '0', 'MKSTREAM')
if type(created) == 'table' and created.err and not string.find(created.err, 'BUSYGROUP', 1, true) then
  return redis.error_reply(created.err)
end
return 1
