-- wrk script: POST /v1/sales/$SALE/orders, three SKU lines, a fresh user per
-- request (stock seeded large, no per-user limit). Prints the shared report line.
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end

local counter = 0
local path = "/v1/sales/" .. (os.getenv("SALE") or "1") .. "/orders"
local headers = { ["Content-Type"] = "application/json" }
local base = 0

function init(args)
  base = tid * 1000000000
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers,
    '{"user_id":' .. (base + counter) .. ',"items":[{"sku":1,"quantity":1},{"sku":2,"quantity":1},{"sku":3,"quantity":1}]}')
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
