-- include: prelude, queue
-- queue_admit.lua: admit the next in line of a waiting room (KEYS: see
-- lib/queue.lua). Every instance calls it a few times a second; the rate is kept
-- here, in Redis, so it holds across them.
-- ARGV[1] most places to walk in this call
--
-- In place order (the pre-queue's drawn places first, then joins in order), while
-- the allowance (admit-per-second, bursts of a fifth of a second) and the room
-- (units remaining - admissions unused) allow: a join not seen for poll-grace is
-- skipped (mark 0), any other admitted until now + admission-ttl. Lapsed
-- admissions leave `admitted` first: their units are room again.
-- Returns {'admitted', served, joins, pre, admitted now, skipped now, remaining}
-- or {'no_queue'} | {'not_started'}.
local meta = redis.call('HMGET', KEYS[1], 'starts_at', 'queue_rate', 'queue_ttl_ms', 'queue_grace_ms')
if not meta[2] then
  return {'no_queue'}
end
local now = now_ms()
if now < tonumber(meta[1]) then
  return {'not_started'}
end
local rate, ttl, grace = tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4])
local q = redis.call('HMGET', KEYS[2], 'seq', 'pre', 'served', 'tokens', 'at', 'epoch', 'key', 'admitted', 'sold_out_at')
local seq, pre, served = tonumber(q[1] or '0'), q[2], tonumber(q[3] or '0')
local tokens, at, epoch, key = tonumber(q[4] or '0'), tonumber(q[5] or int(now)), tonumber(q[6]), q[7]
if not pre then
  pre = int(seq)
  redis.call('HSET', KEYS[2], 'pre', pre)
end
pre = tonumber(pre)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', int(now))
local remaining = remaining_units(KEYS[1], KEYS[7])
-- When the units ran out (the live view's "sold out after"); gone if some came back.
if remaining == 0 then
  redis.call('HSETNX', KEYS[2], 'sold_out_at', int(now))
elseif q[9] then
  redis.call('HDEL', KEYS[2], 'sold_out_at')
end
local room = remaining - redis.call('ZCARD', KEYS[6])
local burst = math.max(1, rate / 5)
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
local since = seconds_since(epoch, now)
local until_ms = now + ttl
local until_mark = ADMITTED + seconds_since(epoch, until_ms)
local admitted, skipped, walked, most = 0, 0, 0, tonumber(ARGV[1])
local members = {}
while served < seq and walked < most and room > 0 and tokens >= 1 do
  local place = served + 1
  local join = place
  if place <= pre then
    join = drawn_join(key, pre, place - 1) + 1
  end
  local mark = mark_of(KEYS[4], join)
  if mark > 0 and mark < ADMITTED and (since - (mark - 1)) * 1000 <= grace then
    local user = string.gsub(redis.call('GETRANGE', KEYS[3], (join - 1) * 20, join * 20 - 1), ' ', '')
    members[#members + 1] = int(until_ms)
    members[#members + 1] = user
    set_mark(KEYS[4], join, until_mark)
    admitted, tokens, room = admitted + 1, tokens - 1, room - 1
  else
    set_mark(KEYS[4], join, 0)
    skipped = skipped + 1
  end
  served, walked = place, walked + 1
end
if #members > 0 then
  redis.call('ZADD', KEYS[6], unpack(members))
end
redis.call('HSET', KEYS[2], 'served', int(served), 'tokens', tostring(tokens), 'at', int(now),
  'admitted', int(tonumber(q[8] or '0') + admitted))
return {'admitted', int(served), int(seq), int(pre), admitted, skipped, int(remaining)}
