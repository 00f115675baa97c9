-- adjust_stock.lua: ops top-up of one SKU mid-sale.
--
-- KEYS[1] prices  [2] stock  [3] initial  (the sale's keys)
-- ARGV[1] mode: 'set' (remaining becomes N) or 'add' (remaining grows by N)
-- ARGV[2] sku  ARGV[3] N (>= 0)
--
-- `initial` follows so that initial - remaining is always what orders hold.
-- Returns {'ok', remaining, initial} | {'unknown_sku'}
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then
  return {'unknown_sku'}
end
local n = tonumber(ARGV[3])
local delta = n
if ARGV[1] == 'set' then
  delta = n - tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
end
local remaining = redis.call('HINCRBY', KEYS[2], ARGV[2], delta)
local initial = redis.call('HINCRBY', KEYS[3], ARGV[2], delta)
return {'ok', remaining, initial}
