-- coupon_info.lua: one consistent snapshot of a campaign.
--
-- KEYS[1]  campaign hash  {coupon:ID}:meta
-- KEYS[2]  issued users   {coupon:ID}:users
-- KEYS[3]  outbox stream  {coupon:ID}:outbox
--
-- Returns {} when the campaign is unknown, else
--   {total, remaining, issued, starts_at_ms, ends_at_ms, outbox_len, discount, buckets}
-- (of one bucket when the campaign has buckets: the caller adds them up)
local meta = redis.call('HMGET', KEYS[1], 'total', 'remaining', 'starts_at', 'ends_at', 'discount', 'buckets')
if not meta[1] then
  return {}
end
return {
  tonumber(meta[1]), tonumber(meta[2]), redis.call('SCARD', KEYS[2]),
  tonumber(meta[3]), tonumber(meta[4]), redis.call('XLEN', KEYS[3]), tonumber(meta[5] or '0'),
  tonumber(meta[6] or '1')
}
