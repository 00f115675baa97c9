-- Shared by confirm.lua and pay.lua: this thread's order ids, as
-- wallet_prep.lua wrote them; `next_order()` walks them once, then (ids run
-- out: the report says so) from the start again.
local ids, at, wrapped = nil, 0, 0

function next_order()
  if not ids then
    ids = {}
    for line in io.lines(os.getenv("IDS_DIR") .. "/ids_" .. tid .. ".txt") do
      ids[#ids + 1] = line
    end
  end
  at = at + 1
  if at > #ids then
    at, wrapped = 1, wrapped + 1
  end
  return ids[at]
end
