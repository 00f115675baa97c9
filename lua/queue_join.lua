-- include: prelude, queue
-- queue_join.lua: a user joins a sale's or campaign's waiting room (KEYS: see
-- lib/queue.lua).
-- ARGV[1] user id  [2] the nonce of the solved challenge shown ('' none: the
-- service checked the solution; this records its use)  [3] the challenge's expiry (ms)
--
-- Returns {'joined' | 'again', join number, pre (joins before the start, '' until
-- it), served} or {'unknown'} | {'no_queue'} | {'not_started', opens (ms)}
-- | {'ended'} | {'sold_out'} | {'pow_required'} (the room asks for proof of work,
-- none shown) | {'pow_reused'} (that challenge was used before). Before the sale's start a join is in the pre-queue:
-- drawn at the start among the others (lib/queue.lua). The first call after the
-- start (this or the admitter) fixes `pre`. A user already waiting, or admitted
-- and not lapsed, is answered their join again; one skipped or lapsed joins anew.
local meta = redis.call('HMGET', KEYS[1], 'starts_at', 'ends_at', 'queue_rate', 'queue_opens_ms', 'queue_pow')
if not meta[1] then
  return {'unknown'}
end
if not meta[3] then
  return {'no_queue'}
end
local now = now_ms()
local starts_at = tonumber(meta[1])
local opens = starts_at - tonumber(meta[4])
if now < opens then
  return {'not_started', int(opens)}
end
if has_ended(now, tonumber(meta[2])) then
  return {'ended'}
end
if ARGV[2] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', int(now))
  if redis.call('ZADD', KEYS[8], 'NX', ARGV[3], ARGV[2]) == 0 then
    return {'pow_reused'}
  end
elseif tonumber(meta[5] or '0') > 0 then
  return {'pow_required'}
end
local q = redis.call('HMGET', KEYS[2], 'seq', 'pre', 'served', 'epoch')
local seq, pre, served, epoch = tonumber(q[1] or '0'), q[2], q[3] or '0', tonumber(q[4])
if not pre and now >= starts_at then
  pre = int(seq)
  redis.call('HSET', KEYS[2], 'pre', pre)
end
local user = ARGV[1]
local since = seconds_since(epoch, now)
local known = redis.call('HGET', KEYS[5], user)
if known then
  local mark = mark_of(KEYS[4], tonumber(known))
  if (mark > 0 and mark < ADMITTED) or (mark >= ADMITTED and mark - ADMITTED > since) then
    return {'again', known, pre or '', served}
  end
end
if remaining_units(KEYS[1], KEYS[7]) == 0 then
  return {'sold_out'}
end
seq = seq + 1
redis.call('HSET', KEYS[2], 'seq', int(seq))
redis.call('APPEND', KEYS[3], string.format('%20s', user))
set_mark(KEYS[4], seq, since + 1)
redis.call('HSET', KEYS[5], user, int(seq))
return {'joined', int(seq), pre or '', served}
