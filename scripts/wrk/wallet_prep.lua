-- wrk script (bench setup, not measured): reserves one-unit orders of SKU 1 in
-- sale $SALE for users 1..$USERS in turn, and writes each created order's id
-- to $IDS_DIR/ids_<thread>.txt, for confirm.lua / pay.lua run with as many threads.
local counter = 0
local users = tonumber(os.getenv("USERS") or "1000")
local path = "/v1/sales/" .. (os.getenv("SALE") or "1") .. "/orders"
local headers = { ["Content-Type"] = "application/json" }
local file = nil

function request()
  counter = counter + 1
  local user = 1 + (tid * 7919 + counter) % users
  return wrk.format("POST", path, headers, '{"user_id":' .. user .. ',"items":[{"sku":1,"quantity":1}]}')
end

function response(status, headers, body)
  if status == 201 then
    if not file then
      file = io.open(os.getenv("IDS_DIR") .. "/ids_" .. tid .. ".txt", "w")
      file:setvbuf("line")
    end
    file:write(body:match('"order_id":(%d+)'), "\n")
  end
end

dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
