-- wrk script: POST /v1/coupons/$COUPON/issue with a fresh user id per request,
-- so stock (seeded large) never runs out and no request is a duplicate.
-- POST_PATH posts the same bodies elsewhere (a waiting room's join); USER_BASE
-- (a multiple of 10^8) keeps a later run's users apart from an earlier one's.
local counter = tonumber(os.getenv("USER_BASE") or "0")
local path = os.getenv("POST_PATH") or ("/v1/coupons/" .. (os.getenv("COUPON") or "1") .. "/issue")
local headers = { ["Content-Type"] = "application/json" }

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, '{"user_id":' .. (tid * 1000000000 + counter) .. '}')
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
