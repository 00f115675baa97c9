-- wrk script: POST /v1/coupons/$COUPON/issue for a sold-out campaign (COUPON=2
-- in scripts/bench): every answer is 410 from the in-process sold-out flag,
-- whoever asks. One fixed request (user 2, who holds no coupon, so the flag's
-- refresh through Redis every 250 ms answers sold_out too): wrk builds it once,
-- as it does the empty server's GET, instead of running Lua per request (which
-- cost wrk ~2.5 us more per request on this box, CPU taken from the server).
wrk.method = "POST"
wrk.path = "/v1/coupons/" .. (os.getenv("COUPON") or "2") .. "/issue"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user_id":2}'

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
