-- include: prelude, queue
-- queue_seen.lua: record that waiting joins were polled (each process sends the
-- joins polled since its last call, about once a second). KEYS: [1] queue [2] marks
-- ARGV: join numbers. A join already admitted or skipped keeps its mark.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  return 0
end
local mark = seconds_since(tonumber(epoch), now_ms()) + 1
local seen = 0
for i = 1, #ARGV do
  local join = tonumber(ARGV[i])
  local before = mark_of(KEYS[2], join)
  if before > 0 and before < ADMITTED then
    set_mark(KEYS[2], join, mark)
    seen = seen + 1
  end
end
return seen
