-- include: prelude, queue
-- queue_join.lua: users join a sale's or campaign's waiting room (KEYS: see
-- lib/queue.lua), in arrival order; the service batches concurrent joins of
-- one room into one call.
-- ARGV: per user, three: user id, the nonce of the solved challenge shown ('' none:
-- the service checked the solution; this records its use), the challenge's expiry (ms)
--
-- Returns one answer per user: {'joined' | 'again', join number, pre (joins
-- before the start, '' until it), served} or {'unknown'} | {'no_queue'} |
-- {'not_started', opens (ms)} | {'ended'} | {'sold_out'} | {'pow_required'} (the
-- room asks for proof of work, none shown) | {'pow_reused'} (that challenge was
-- used before). Before the start a join is in the pre-queue: drawn at the start
-- among the others (lib/queue.lua). The first call after the start (this or the
-- admitter) fixes `pre`. A user already waiting, or admitted and not lapsed, is
-- answered their join again; one skipped or lapsed joins anew.
local n = #ARGV / 3
local function every(answer)
  local answers = {}
  for i = 1, n do
    answers[i] = answer
  end
  return answers
end
local meta = redis.call('HMGET', KEYS[1], 'starts_at', 'ends_at', 'queue_rate', 'queue_opens_ms', 'queue_pow')
if not meta[1] then
  return every({'unknown'})
end
if not meta[3] then
  return every({'no_queue'})
end
local now = now_ms()
local starts_at = tonumber(meta[1])
local opens = starts_at - tonumber(meta[4])
if now < opens then
  return every({'not_started', int(opens)})
end
if has_ended(now, tonumber(meta[2])) then
  return every({'ended'})
end
local pow = tonumber(meta[5] or '0') > 0
local q = redis.call('HMGET', KEYS[2], 'seq', 'pre', 'served', 'epoch')
local seq, pre, served, epoch = tonumber(q[1] or '0'), q[2], q[3] or '0', tonumber(q[4])
local seq_start = seq
if not pre and now >= starts_at then
  pre = int(seq)
  redis.call('HSET', KEYS[2], 'pre', pre)
end
local since = seconds_since(epoch, now)
local remaining = nil
local pruned = false
local answers = {}
for i = 1, n do
  local user, nonce, expiry = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  local answer = nil
  if nonce ~= '' then
    if not pruned then
      redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', int(now))
      pruned = true
    end
    if redis.call('ZADD', KEYS[8], 'NX', expiry, nonce) == 0 then
      answer = {'pow_reused'}
    end
  elseif pow then
    answer = {'pow_required'}
  end
  if not answer then
    if remaining == nil then
      remaining = remaining_units(KEYS[1], KEYS[7])
    end
    local part = joined_part(KEYS[5], user)
    -- A first join (the common case) claims its entry in one step.
    local first = remaining > 0 and redis.call('HSETNX', part, user, int(seq + 1)) == 1
    if not first then
      local known = redis.call('HGET', part, user)
      if known then
        local mark = mark_of(KEYS[4], tonumber(known))
        if (mark > 0 and mark < ADMITTED) or (mark >= ADMITTED and mark - ADMITTED > since) then
          answer = {'again', known, pre or '', served}
        end
      end
    end
    if not answer then
      if remaining == 0 then
        answer = {'sold_out'}
      else
        seq = seq + 1
        redis.call('APPEND', KEYS[3], string.format('%20s', user))
        set_mark(KEYS[4], seq, since + 1)
        if not first then
          redis.call('HSET', part, user, int(seq))
        end
        answer = {'joined', int(seq), pre or '', served}
      end
    end
  end
  answers[i] = answer
end
if seq > seq_start then
  redis.call('HSET', KEYS[2], 'seq', int(seq))
end
return answers
