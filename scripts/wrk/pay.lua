-- wrk script: POST /v1/sales/$SALE/orders/{id}/pay {"method":"wallet"} for the
-- orders wallet_prep.lua reserved, each once (their users' wallets cover them all).
local path = "/v1/sales/" .. (os.getenv("SALE") or "1") .. "/orders/"
local headers = { ["Content-Type"] = "application/json" }
dofile("scripts/wrk/orders_from_file.lua")

function request()
  return wrk.format("POST", path .. next_order() .. "/pay", headers, '{"method":"wallet"}')
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
