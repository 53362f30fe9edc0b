-- wrk script of bench/run.sh: one authenticated request, repeated; prints one summary line.
-- Reads BENCH_TOKEN (bearer token), BENCH_METHOD (default GET) and BENCH_BODY (a JSON body).

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

-- requests, seconds, p50 ms, p99 ms, non-2xx/3xx answers, socket errors
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT\t%d\t%.6f\t%.3f\t%.3f\t%d\t%d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
