-- wrk's done() for the bench scripts: one JSON line on stdout.
return function(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_s": %.2f, "rps": %.1f, "socket_errors": %d, ' ..
    '"non2xx": %d, "lat_p50_ms": %.3f, "lat_p99_ms": %.3f, "lat_max_ms": %.3f}\n',
    summary.requests, s, summary.requests / s, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
