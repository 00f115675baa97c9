-- wrk script: POST /v1/wallets/{user}/charge {"amount":1000,"payment_key":...} with
-- a fresh user, Idempotency-Key and payment_key per request (users above 10^12:
-- apart from the payers; unsigned: the bench's service runs with --payments-unsigned).
local counter = 0

function request()
  counter = counter + 1
  local user = 1000000000000 + tid * 1000000000 + counter
  local headers = { ["Content-Type"] = "application/json", ["Idempotency-Key"] = "bench-" .. counter }
  local body = '{"amount":1000,"payment_key":"bench-charge-' .. user .. '"}'
  return wrk.format("POST", "/v1/wallets/" .. user .. "/charge", headers, body)
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
