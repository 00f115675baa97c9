-- include: prelude
-- settle_coupon.lua: on Redis Cluster, end coupon holds (see hold_coupon.lua),
-- or list the overdue ones.
--
-- KEYS[1] meta  [2] used  [3] holds   (the campaign's keys)
-- ARGV[1] mode 'settle' or 'due'
-- settle: then five fields per hold: user, sale id, token ('' = none),
--   order id ('' = none), and the order's deadline (ms) when it took the
--   coupon, '' when it did not (or gave it back):
--   - taken: a mark that is still this hold becomes '<sale>:<order>', and the
--     campaign's keys stay until the order's deadline;
--   - not taken: a mark that is this hold, or '<sale>:<order>', is removed:
--     the coupon is the user's to use again (the use sequence moves by one).
--   A mark that names anything else (a later hold, another order) is left
--   alone. The hold leaves `holds` either way. Returns the marks changed.
-- due: ARGV[2] margin (ms)  ARGV[3] most to list. Returns the holds
--   ('<user>:<sale>:<token>') whose deadline passed more than `margin` ago by
--   this node's clock: no reservation can take them any more (it refuses a
--   hold past its deadline by its own node's clock; `margin` covers the skew).
local now = now_ms()
if ARGV[1] == 'due' then
  return redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, tonumber(ARGV[3]))
end
local changed, keep = 0, nil
for i = 2, #ARGV, 5 do
  local user, sale, token, order, deadline = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local mark = redis.call('HGET', KEYS[2], user)
  local hold = 'hold:' .. sale .. ':' .. token
  if deadline ~= '' then
    if token ~= '' and mark == hold then
      redis.call('HSET', KEYS[2], user, sale .. ':' .. order)
      changed = changed + 1
    end
    keep = math.max(keep or 0, tonumber(deadline))
  elseif mark and ((token ~= '' and mark == hold) or (order ~= '' and mark == sale .. ':' .. order)) then
    redis.call('HDEL', KEYS[2], user)
    -- Past the sequence number a release took (the order's + 1, or a
    -- restored order's), so the user's next use is newer in MySQL.
    if redis.call('EXISTS', KEYS[1]) == 1 then
      redis.call('HINCRBY', KEYS[1], 'use_seq', 1)
    end
    changed = changed + 1
  end
  if token ~= '' then
    redis.call('ZREM', KEYS[3], user .. ':' .. sale .. ':' .. token)
  end
end
if keep then
  local held = tonumber(redis.call('HGET', KEYS[1], 'held_until') or '0')
  if keep > held and redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('HSET', KEYS[1], 'held_until', int(keep))
  end
end
return changed
