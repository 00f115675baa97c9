-- wrk script: POST /v1/sales/$SALE/orders, $LINES one-unit lines (SKUs 1..LINES,
-- default 3), a fresh user per request (stock seeded large, no per-user limit).
local counter = 0
local path = "/v1/sales/" .. (os.getenv("SALE") or "1") .. "/orders"
local headers = { ["Content-Type"] = "application/json" }
local items = {}
for sku = 1, tonumber(os.getenv("LINES") or "3") do
  items[#items + 1] = '{"sku":' .. sku .. ',"quantity":1}'
end
local lines = ',"items":[' .. table.concat(items, ',') .. ']}'

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, '{"user_id":' .. (tid * 1000000000 + counter) .. lines)
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
