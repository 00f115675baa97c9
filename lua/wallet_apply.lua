-- include: prelude
-- wallet_apply.lua: charges, debits and voids of one wallet shard, each atomic.
--
-- KEYS[1] balances  user -> 'balance:version:updated_at' (ms)
-- KEYS[2] idem      'user:key' -> charge fingerprint '\n' first answer
-- KEYS[3] pays      'user:sale:order:attempt' -> 'd:amount:balance:version:at' (debited) | 'v' (void)
-- KEYS[4] aged      zset of 'i:' .. idem field and 'p:' .. pays field, by time written (ms)
-- KEYS[5] outbox    the shard's wallet events not yet acknowledged by Kafka
-- ARGV[1] most balance a wallet may hold  ARGV[2] how long idem and pays records are kept (ms)
-- ARGV[3] how long a void is kept (ms, at most ARGV[2]): past the longest a payment
--         attempt's debit can still arrive (its hold, plus a request's longest life)
-- then one record per request, in arrival order (the service batches concurrent
-- requests of one shard into one call):
--   'charge', user, idempotency key, fingerprint, amount
--   'debit',  user, pay ref ('sale:order:attempt'), amount, sale, order
--   'void',   user, pay ref
--
-- A debit is recorded under its pay ref: the same ref again answers the same
-- debit and takes nothing more. A void (the recovery pass, for a hold whose
-- payment never finished) records that the ref will never be debited; a debit
-- of a voided ref is refused, and a void of a debited ref answers the debit.
-- So of a debit and a void of one ref exactly one wins, whatever their order.
-- A refused debit (insufficient balance) voids its ref too: a hold is only
-- ever released once its ref can no longer be debited.
-- Records older than ARGV[2] are forgotten, a few per call; a void is aged as
-- if written ARGV[2] - ARGV[3] earlier, so it goes ARGV[3] after it was made
-- (refused payments, however many, leave nothing for long).
--
-- Returns one answer per request, in order:
--   charge: {'charged', answer} | {'replay', answer} | {'idem_mismatch'} | {'over_limit', left}
--           (answer: 'balance:charged:at')
--   debit:  {'debited', 'amount:balance:version:at'} (also when debited before) | {'insufficient', balance}
--           | {'voided'}
--   void:   {'voided'} | {'debited', 'amount:balance:version:at'}
-- Every change appends an event; one outbox entry per call holds them all
-- (field 'events', a JSON array; ids are written as the service passed them).
local now = now_ms()
local max_balance, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
local void_at = now - keep + math.min(tonumber(ARGV[3]), keep)

-- Forget old records: a few more than this call can write, so the set shrinks.
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', int(now - keep), 'LIMIT', 0, 2 * #ARGV + 16)
for _, member in ipairs(old) do
  local field = string.sub(member, 3)
  if string.sub(member, 1, 1) == 'i' then
    redis.call('HDEL', KEYS[2], field)
  else
    redis.call('HDEL', KEYS[3], field)
  end
end
if #old > 0 then
  redis.call('ZREM', KEYS[4], unpack(old))
end

local wallets = {}
local function wallet(user)
  local w = wallets[user]
  if not w then
    local raw = redis.call('HGET', KEYS[1], user)
    w = {balance = 0, version = 0}
    if raw then
      local b, v = string.match(raw, '^(%d+):(%d+):')
      w.balance, w.version = tonumber(b), tonumber(v)
    end
    wallets[user] = w
  end
  return w
end
local events = {}
local function change(user, w, kind, amount, sale, order)
  w.version = w.version + 1
  redis.call('HSET', KEYS[1], user, int(w.balance) .. ':' .. int(w.version) .. ':' .. int(now))
  events[#events + 1] = '{"user_id":' .. user .. ',"kind":"' .. kind .. '","amount":' .. int(amount)
    .. ',"balance_after":' .. int(w.balance) .. ',"version":' .. int(w.version)
    .. ',"sale_id":' .. sale .. ',"order_id":' .. order .. ',"at":' .. int(now) .. '}'
end

local function charge(user, key, fingerprint, amount)
  local field = user .. ':' .. key
  local prior = redis.call('HGET', KEYS[2], field)
  if prior then
    local sep = string.find(prior, '\n', 1, true)
    if string.sub(prior, 1, sep - 1) == fingerprint then
      return {'replay', string.sub(prior, sep + 1)}
    end
    return {'idem_mismatch'}
  end
  local w = wallet(user)
  if w.balance + amount > max_balance then
    return {'over_limit', int(math.max(max_balance - w.balance, 0))}
  end
  w.balance = w.balance + amount
  change(user, w, 'charge', amount, 'null', 'null')
  local answer = int(w.balance) .. ':' .. int(amount) .. ':' .. int(now)
  redis.call('HSET', KEYS[2], field, fingerprint .. '\n' .. answer)
  redis.call('ZADD', KEYS[4], int(now), 'i:' .. field)
  return {'charged', answer}
end

local function debit(user, ref, amount, sale, order)
  local field = user .. ':' .. ref
  local prior = redis.call('HGET', KEYS[3], field)
  if prior == 'v' then
    return {'voided'}
  elseif prior then
    return {'debited', string.sub(prior, 3)}
  end
  local w = wallet(user)
  if w.balance < amount then
    -- Refused for good: the attempt's hold is released next, and a retry of
    -- this attempt racing that release must not debit an order no longer held.
    redis.call('HSET', KEYS[3], field, 'v')
    redis.call('ZADD', KEYS[4], int(void_at), 'p:' .. field)
    return {'insufficient', int(w.balance)}
  end
  w.balance = w.balance - amount
  change(user, w, 'payment', amount, sale, order)
  local record = int(amount) .. ':' .. int(w.balance) .. ':' .. int(w.version) .. ':' .. int(now)
  redis.call('HSET', KEYS[3], field, 'd:' .. record)
  redis.call('ZADD', KEYS[4], int(now), 'p:' .. field)
  return {'debited', record}
end

local function void(user, ref)
  local field = user .. ':' .. ref
  local prior = redis.call('HGET', KEYS[3], field)
  if prior and prior ~= 'v' then
    return {'debited', string.sub(prior, 3)}
  end
  if not prior then
    redis.call('HSET', KEYS[3], field, 'v')
    redis.call('ZADD', KEYS[4], int(void_at), 'p:' .. field)
  end
  return {'voided'}
end

local answers = {}
local i = 4
while i <= #ARGV do
  local op, user = ARGV[i], ARGV[i + 1]
  if op == 'charge' then
    answers[#answers + 1] = charge(user, ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]))
    i = i + 5
  elseif op == 'debit' then
    answers[#answers + 1] = debit(user, ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5])
    i = i + 6
  else
    answers[#answers + 1] = void(user, ARGV[i + 2])
    i = i + 3
  end
end
if #events > 0 then
  redis.call('XADD', KEYS[5], '*', 'events', '[' .. table.concat(events, ',') .. ']')
end
return answers
