-- wrk script: POST /v1/sales/$SALE/orders/{id}/confirm (unsigned: the bench's
-- service runs with --payments-unsigned; wrk's Lua has no HMAC) for the
-- orders wallet_prep.lua reserved, each once, with its to_pay (100).
local path = "/v1/sales/" .. (os.getenv("SALE") or "1") .. "/orders/"
local headers = { ["Content-Type"] = "application/json" }
dofile("scripts/wrk/orders_from_file.lua")

function request()
  local id = next_order()
  return wrk.format("POST", path .. id .. "/confirm", headers, '{"payment_key":"bench-' .. id .. '","amount":100}')
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
