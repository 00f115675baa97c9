-- wrk script: POST /v1/sales/$SALE/orders, three SKU lines, a fresh user per
-- request (stock seeded large, no per-user limit).
local counter = 0
local path = "/v1/sales/" .. (os.getenv("SALE") or "1") .. "/orders"
local headers = { ["Content-Type"] = "application/json" }
local lines = ',"items":[{"sku":1,"quantity":1},{"sku":2,"quantity":1},{"sku":3,"quantity":1}]}'

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, '{"user_id":' .. (tid * 1000000000 + counter) .. lines)
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
