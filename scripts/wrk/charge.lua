-- wrk script: POST /v1/wallets/{user}/charge {"amount":1000} with a fresh user
-- and Idempotency-Key per request (users above 10^12: apart from the payers).
local counter = 0
local body = '{"amount":1000}'

function request()
  counter = counter + 1
  local user = 1000000000000 + tid * 1000000000 + counter
  local headers = { ["Content-Type"] = "application/json", ["Idempotency-Key"] = "bench-" .. counter }
  return wrk.format("POST", "/v1/wallets/" .. user .. "/charge", headers, body)
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
