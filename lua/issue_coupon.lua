-- include: prelude
-- issue_coupon.lua: first-come coupon issuance for one or more users, atomically.
--
-- KEYS[1]  campaign hash   {coupon:ID}:meta    fields total, remaining, starts_at, ends_at (ms since epoch; ends_at 0 = never)
-- KEYS[2]  issued users    {coupon:ID}:users   set of user ids
-- KEYS[3]  outbox stream   {coupon:ID}:outbox  one entry per call that issued any: fields coupon_id,
--                                              issued_at and user_ids (the call's winners, comma-separated,
--                                              in order); removed by the relay once Kafka has its events
-- KEYS[4]  admissions    {coupon:ID}:queue_admitted  with a waiting room (`queue_rate` in
--                                              the meta): user -> admitted until (ms)
-- ARGV[1]  coupon id (decimal string), copied into the outbox entries
-- ARGV[2]  the campaign's bucket count as the caller believes it (see buckets.rs);
--          the keys are one bucket's (bucket 0: the campaign's own)
-- ARGV[3..] user ids (decimal strings), in arrival order; the service batches
--          concurrent requests for one campaign into one call. '+' before an id:
--          the caller showed a valid admission of the waiting room
--          (src/domain/queue.rs); with a room, only they are served, once each
--
-- Returns one of
--   {'unknown'} | {'not_started'} | {'ended'}     for every user of the call
--   {'buckets', n}    the campaign has n buckets, not ARGV[2]: nothing done
--   {now_ms, r1, r2, ...}                         one r per user, in order:
--       r >= 0  issued; r is the stock remaining right after this user's issue
--       r = -1  already issued to this user
--       r = -2  sold out
--       r = -3  not admitted (a room, and no admission shown, or none in Redis)
-- Each user is checked and served in turn; nothing is written for a user
-- unless every check passes, so a decrement, the user's membership and the
-- outbox record are never separated. The call's issues share one outbox entry
-- (one XADD, and one read, claim and acknowledgement by the relay, per call).
local meta = redis.call('HMGET', KEYS[1], 'remaining', 'starts_at', 'ends_at', 'buckets', 'queue_rate')
if not meta[1] then
  return {'unknown'}
end
if (meta[4] or '1') ~= ARGV[2] then
  return {'buckets', tonumber(meta[4] or '1')}
end
local now = now_ms()
local closed = closed_at(now, tonumber(meta[2]), tonumber(meta[3]))
if closed then
  return {closed}
end
local now_text = int(now)
local remaining = tonumber(meta[1])
local queued = meta[5] ~= false
local winners = {}
local answer = {now}
for i = 3, #ARGV do
  local user = ARGV[i]
  local shown = string.byte(user, 1) == 43
  if shown then
    user = string.sub(user, 2)
  end
  if queued and not (shown and tonumber(redis.call('ZSCORE', KEYS[4], user) or '0') > now) then
    answer[i - 1] = redis.call('SISMEMBER', KEYS[2], user) == 1 and -1 or -3
  elseif remaining <= 0 then
    -- Sold out: a holder still learns they hold it.
    answer[i - 1] = redis.call('SISMEMBER', KEYS[2], user) == 1 and -1 or -2
  elseif redis.call('SADD', KEYS[2], user) == 0 then
    answer[i - 1] = -1
  else
    remaining = remaining - 1
    winners[#winners + 1] = user
    answer[i - 1] = remaining
  end
end
if #winners > 0 then
  redis.call('XADD', KEYS[3], '*', 'coupon_id', ARGV[1], 'issued_at', now_text, 'user_ids', table.concat(winners, ','))
  redis.call('HINCRBY', KEYS[1], 'remaining', -#winners)
  if queued then
    redis.call('ZREM', KEYS[4], unpack(winners))
  end
end
return answer
