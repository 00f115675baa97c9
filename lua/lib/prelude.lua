-- lib/prelude.lua: the clock, integers as text, a window's checks.
-- Prepended to each script whose first line names it (`-- include: prelude`;
-- see src/scripts/source.rs). Locals only: a script may not set globals.

-- Now by this node's clock, in ms since the epoch.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers go out as text through '%d': formatting a Lua number (a double)
-- any other way takes the slow floating-point path (and may print 1e+15).
local function int(n)
  return string.format('%d', n)
end

-- Whether a window ending at `ends_at` (ms, 0 = never) has ended at `now`.
local function has_ended(now, ends_at)
  return ends_at > 0 and now >= ends_at
end

-- Why a window [starts_at, ends_at) is closed at `now`: 'not_started',
-- 'ended', or nil while it is open.
local function closed_at(now, starts_at, ends_at)
  if now < starts_at then
    return 'not_started'
  elseif has_ended(now, ends_at) then
    return 'ended'
  end
  return nil
end
