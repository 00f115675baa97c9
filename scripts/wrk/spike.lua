-- wrk script: issue.lua's requests for a spike on a campaign of limited stock
-- (COUPON=3 in scripts/bench): each thread stops at its first 410 (sold out),
-- so no load follows the sell-out while the bench times the drain.
dofile("scripts/wrk/issue.lua")

function response(status)
  if status == 410 then
    wrk.thread:stop()
  end
end
