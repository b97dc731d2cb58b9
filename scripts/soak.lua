-- wrk script for make soak (scripts/soak.sh): bench/predict.lua's requests
-- (a multipart PNG on POST $PREDICT_PATH, cycling through $PNG_DIR), plus
-- every response counted by status. Each wrk thread has its own Lua state,
-- so done() sums the threads' counts (setup keeps a handle on each thread)
-- and writes one JSON line: requests, socket errors by kind, statuses.
dofile("bench/predict.lua")  -- defines request() (and bench's done, replaced below)

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

statuses = {}  -- this thread's counts, read by done() through thread:get
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses") or {}) do total[status] = (total[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(total) do parts[#parts + 1] = string.format('"%d": %d', status, n) end
  table.sort(parts)
  local e = summary.errors
  local s = summary.duration / 1e6
  io.write(string.format('{"requests": %d, "duration_s": %.2f, "rps": %.1f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
    '"statuses": {%s}, "lat_p50_ms": %.3f, "lat_p99_ms": %.3f, "lat_max_ms": %.3f}\n',
    summary.requests, s, summary.requests / s, e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ", "), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
