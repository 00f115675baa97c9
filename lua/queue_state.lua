-- include: prelude, queue
-- queue_state.lua: what every poll of a waiting room needs, read by each
-- process a few times a second (KEYS: see lib/queue.lua; [1] [2] [6] [7] used).
-- Returns {} without a queue, else {joins, pre ('' before the start), served,
-- remaining units, admissions unused, admitted in all, epoch (ms), draw key,
-- admit-per-second, admission ttl (ms), starts_at (ms), poll grace (ms), proof of
-- work difficulty, the waiting page's return URL, when the units ran out (ms; ''
-- while some remain)}.
local meta = redis.call('HMGET', KEYS[1], 'queue_rate', 'queue_ttl_ms', 'starts_at', 'queue_grace_ms', 'queue_pow',
  'queue_return')
if not meta[1] then
  return {}
end
local q = redis.call('HMGET', KEYS[2], 'seq', 'pre', 'served', 'epoch', 'key', 'admitted', 'sold_out_at')
return {q[1] or '0', q[2] or '', q[3] or '0', int(remaining_units(KEYS[1], KEYS[7])), redis.call('ZCARD', KEYS[6]),
  q[6] or '0', q[4] or '0', q[5] or '', meta[1], meta[2], meta[3], meta[4], meta[5] or '0',
  meta[6] or '', q[7] or ''}
