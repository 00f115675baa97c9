-- Shared by the wrk scripts: numbers each thread (`tid`, for distinct user
-- ids across threads) and prints one JSON line at the end with req/s,
-- latency percentiles (ms) and errors.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d,"non_2xx":%d}\n',
    summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
