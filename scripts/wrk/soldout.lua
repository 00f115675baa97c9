-- wrk script: the same requests as issue.lua, aimed at a sold-out campaign
-- (COUPON=2 in scripts/bench): every answer is 410.
dofile("scripts/wrk/issue.lua")
