-- include: prelude, queue
-- queue_fate.lua: the mark of one join whose place has been served (admitted
-- until, or skipped). KEYS: [1] marks [2] users  ARGV[1] join number [2] user.
-- Returns the mark, or -1 when that join is not the user's (the line was lost
-- in a failover or with Redis, and the number given to someone else since).
local join = tonumber(ARGV[1])
local user = string.gsub(redis.call('GETRANGE', KEYS[2], (join - 1) * 20, join * 20 - 1), ' ', '')
if user ~= ARGV[2] then
  return -1
end
return mark_of(KEYS[1], join)
