-- wrk script: POST /v1/coupons/$COUPON/issue against a sold-out campaign, fresh
-- users: every answer is 410. Prints the shared report line.
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end

local counter = 0
local path = "/v1/coupons/" .. (os.getenv("COUPON") or "2") .. "/issue"
local headers = { ["Content-Type"] = "application/json" }
function init(args) end
function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, '{"user_id":' .. (tid * 1000000000 + counter) .. '}')
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
