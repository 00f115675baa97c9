-- lib/queue.lua: a waiting room's pieces (`-- include: prelude, queue`): the
-- per-join marks, the remaining units, and the draw that orders the pre-queue.
-- A queue's keys (see src/keys.rs): KEYS[1] the sale's or campaign's meta
-- [2] queue (hash: seq, pre, served, tokens, at, epoch, key, admitted, sold_out_at)  [3] users
-- (20 bytes per join, by join number)  [4] marks (u32 per join)  [5] joined: the
-- prefix of JOINED_PARTS small hashes, user -> join number (`joined_part`)  [6] admitted (zset user -> admitted until, ms)  [7] the sale's
-- stock, or for a campaign its meta again (field `remaining`)  [8] pow (zset:
-- nonces of solved challenges used to join -> their expiry, ms).

-- A join's mark: 0 skipped (abandoned); 1 .. 2^31 - 1 waiting, last seen at
-- (mark - 1) s after the queue's epoch; ADMITTED + s admitted until s after it.
local ADMITTED = 2147483648

-- user -> join lives in one of JOINED_PARTS hashes in the room's slot, so each
-- stays a listpack (512 entries by default: up to 4M joins) at ~10 bytes an entry
-- where one big hash costs ~60. Fixed: changing it would lose every room's joins.
local JOINED_PARTS = 8192

local function joined_part(prefix, user)
  return prefix .. ':' .. (tonumber(string.sub(user, -6)) % JOINED_PARTS)
end

-- Deletes a room's joined parts (setup of a room that existed, retirement).
local function drop_joined(prefix)
  for part = 0, JOINED_PARTS - 1 do
    redis.call('UNLINK', prefix .. ':' .. part)
  end
end

local function seconds_since(epoch, now)
  return math.floor((now - epoch) / 1000)
end

-- Big-endian u32s, join n's at byte 4(n - 1) (the layout of BITFIELD's u32 #n;
-- GETRANGE / SETRANGE cost less to parse). Past the end: 0.
local function mark_of(marks, join)
  local bytes = redis.call('GETRANGE', marks, int((join - 1) * 4), int(join * 4 - 1))
  if #bytes < 4 then
    bytes = bytes .. string.rep('\0', 4 - #bytes)
  end
  return (struct.unpack('>I4', bytes))
end

local function set_mark(marks, join, mark)
  redis.call('SETRANGE', marks, int((join - 1) * 4), struct.pack('>I4', mark))
end

-- Units left: of every SKU of a sale, or a campaign's coupons (stock = meta).
local function remaining_units(meta, stock)
  if stock == meta then
    return tonumber(redis.call('HGET', meta, 'remaining') or '0')
  end
  local n = 0
  for _, v in ipairs(redis.call('HVALS', stock)) do
    n = n + tonumber(v)
  end
  return n
end

-- The pre-queue draw: a keyed permutation of 0 .. size - 1 (six Feistel rounds
-- over the smallest even power of two holding it, cycle-walked back into it).
-- src/queue/draw.rs computes the same forward; the admitter needs the inverse.
local function draw_round(key, round, half, bits)
  local h = redis.sha1hex(key .. ':' .. round .. ':' .. int(half))
  return tonumber(string.sub(h, 1, 8), 16) % (2 ^ bits)
end

local function draw_bits(size)
  local bits = 1
  while 2 ^ (2 * bits) < size do
    bits = bits + 1
  end
  return bits
end

-- The join (0-based) that the draw puts at place `place` (0-based).
local function drawn_join(key, size, place)
  local bits = draw_bits(size)
  local mask = 2 ^ bits
  local x = place
  repeat
    local l, r = math.floor(x / mask), x % mask
    for round = 6, 1, -1 do
      l, r = bit.bxor(r, draw_round(key, round, l, bits)), l
    end
    x = l * mask + r
  until x < size
  return x
end
