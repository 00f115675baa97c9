-- include: prelude
-- move_stock.lua: move units of a SKU from one bucket of a sale to another
-- (see sales/moves.rs), one step per mode, each in one bucket's slot.
--
-- 'take', in the donor's slot: KEYS[1] meta  [2] stock  [3] initial  [4] moves
--   ARGV[2] sku  [3] units wanted  [4] the home bucket  [5] this (donor) bucket
--   Takes max(wanted, half the stock), at most the stock, off `stock` and
--   `initial` (initial - stock stays what this bucket's orders hold) and
--   records the move under a new id (`donor.epoch.seq`): `home:sku:units:taken_at:epoch`,
--   epoch being the seeding's (seed_sale.lua): a move never outlives a reseed.
--   Returns {units, move id, taken_at (ms)}; {0} when it has none.
-- 'give', in the home's slot: KEYS[1] meta  [2] stock  [3] initial  [4] received
--   ARGV[2] sku  [3] units  [4] move id  [5] taken_at  [6] window (ms)  [7] epoch
--   Adds the units to `stock` and `initial` once per move id ('given'; again:
--   'already'). A move taken more than the window ago is refused ('late'),
--   so once this bucket said 'late' of a move, whether it was given is final.
--   'gone' when the home's sale is gone or was seeded again since the take.
-- 'done', in the donor's slot: KEYS[1] moves  ARGV[2] move id: forgets it.
-- 'keep', in the donor's slot: KEYS[1] moves  ARGV[2] move id: writes the move
--   again ('kept'; 'gone' when it is no longer recorded), so the caller's
--   replica acknowledgement covers the take before anyone gives it.
-- 'undo', in the donor's slot: KEYS[1] stock  [2] initial  [3] moves
--   ARGV[2] move id: puts a move nobody was given back ('undone'; 'gone' when
--   it is no longer recorded).
local mode = ARGV[1]
if mode == 'take' then
  local now = now_ms()
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return {0}
  end
  local sku = ARGV[2]
  local stock = tonumber(redis.call('HGET', KEYS[2], sku) or '0')
  local units = math.min(stock, math.max(tonumber(ARGV[3]), math.floor(stock / 2)))
  if units <= 0 then
    return {0}
  end
  local n = int(units)
  redis.call('HINCRBY', KEYS[2], sku, -units)
  redis.call('HINCRBY', KEYS[3], sku, -units)
  local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
  local id = ARGV[5] .. '.' .. epoch .. '.' .. redis.call('HINCRBY', KEYS[1], 'move_seq', 1)
  local taken_at = int(now)
  redis.call('HSET', KEYS[4], id, ARGV[4] .. ':' .. sku .. ':' .. n .. ':' .. taken_at .. ':' .. epoch)
  return {units, id, taken_at, epoch}
elseif mode == 'give' then
  local now = now_ms()
  if redis.call('EXISTS', KEYS[1]) == 0 or (redis.call('HGET', KEYS[1], 'epoch') or '0') ~= ARGV[7] then
    return 'gone'
  end
  local id = ARGV[4]
  if redis.call('ZSCORE', KEYS[4], id) then
    return 'already'
  end
  if now - tonumber(ARGV[5]) > tonumber(ARGV[6]) then
    return 'late'
  end
  redis.call('ZADD', KEYS[4], ARGV[5], id)
  redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
  redis.call('HINCRBY', KEYS[3], ARGV[2], ARGV[3])
  return 'given'
elseif mode == 'keep' then
  local move = redis.call('HGET', KEYS[1], ARGV[2])
  if not move then
    return 'gone'
  end
  redis.call('HSET', KEYS[1], ARGV[2], move)
  return 'kept'
elseif mode == 'done' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  return 'done'
elseif mode == 'undo' then
  local move = redis.call('HGET', KEYS[3], ARGV[2])
  if not move then
    return 'gone'
  end
  local _, _, sku, units = string.find(move, '^%d+:(%d+):(%d+):')
  redis.call('HINCRBY', KEYS[1], sku, units)
  redis.call('HINCRBY', KEYS[2], sku, units)
  redis.call('HDEL', KEYS[3], ARGV[2])
  return 'undone'
end
return redis.error_reply('move_stock: unknown mode ' .. tostring(mode))
