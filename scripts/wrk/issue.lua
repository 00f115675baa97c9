-- wrk script: POST /v1/coupons/$COUPON/issue with a fresh user id per request,
-- so stock (seeded large) never runs out and no request is a duplicate.
-- Prints one JSON line of results at the end.
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

local counter = 0
local path = "/v1/coupons/" .. (os.getenv("COUPON") or "1") .. "/issue"
local headers = { ["Content-Type"] = "application/json" }
local base = 0

function init(args)
  base = tid * 1000000000 + (tonumber(os.getenv("USER_BASE") or "0"))
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, '{"user_id":' .. (base + counter) .. '}')
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
