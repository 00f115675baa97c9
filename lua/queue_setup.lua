-- include: prelude, queue
-- queue_setup.lua: give a sale or campaign a fresh waiting room, or none (KEYS:
-- see lib/queue.lua; [7] is left alone). Called after seeding on every create.
-- ARGV: 'on', admit-per-second, admission ttl (ms), pre-queue window (ms), poll
-- grace (ms), draw key (random hex), epoch (ms: when the pre-queue opens), proof
-- of work difficulty (0 none), the waiting page's return URL ('' none) | 'off'.
if redis.call('EXISTS', KEYS[2]) == 1 then
  drop_joined(KEYS[5])
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[8])
if ARGV[1] ~= 'on' then
  redis.call('HDEL', KEYS[1], 'queue_rate', 'queue_ttl_ms', 'queue_opens_ms', 'queue_grace_ms', 'queue_pow',
    'queue_return')
  return 'off'
end
redis.call('HSET', KEYS[1], 'queue_rate', ARGV[2], 'queue_ttl_ms', ARGV[3], 'queue_opens_ms', ARGV[4],
  'queue_grace_ms', ARGV[5], 'queue_pow', ARGV[8], 'queue_return', ARGV[9])
redis.call('HSET', KEYS[2], 'key', ARGV[6], 'epoch', ARGV[7], 'seq', '0', 'served', '0')
return 'on'
