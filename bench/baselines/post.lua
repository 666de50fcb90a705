-- wrk script: POST bodies read from a file (one JSON body per line), cycling through them,
-- so every request carries real replay rows. Env: WRK_BODY_FILE, WRK_CONTENT_TYPE.
-- At the end prints one JSON line prefixed "WRKJSON " that bench/serve_bench.py parses.

local bodies = {}
local index = 0

local path = os.getenv("WRK_BODY_FILE")
local file = assert(io.open(path, "r"), "cannot open WRK_BODY_FILE " .. tostring(path))
for line in file:lines() do
  if #line > 0 then
    bodies[#bodies + 1] = line
  end
end
file:close()
assert(#bodies > 0, "no bodies in " .. path)

wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "application/json"

local statuses = {}

function request()
  index = index % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[index])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
