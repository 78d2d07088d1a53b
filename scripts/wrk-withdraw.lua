-- wrk script for scripts/bench-api.sh: each request POSTs the next pre-signed /mch/withdraw
-- envelope from the file in WRK_REQUESTS (one per line, each used once; threads take
-- interleaved lines). Answers other than {"code":200,...} are counted and printed as errors.
local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
    table.insert(threads, thread)
end

function init(args)
    local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
    lines = {}
    local i = 0
    for line in io.lines(os.getenv("WRK_REQUESTS")) do
        if i % nthreads == id - 1 then lines[#lines + 1] = line end
        i = i + 1
    end
    pos = 0
    failures = 0
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
end

function request()
    pos = pos + 1
    if pos > #lines then pos = 1 end  -- ran out: repeats are refused as replays and counted as errors
    return wrk.format(nil, nil, nil, lines[pos])
end

function response(status, headers, body)
    if status ~= 200 or string.sub(body, 1, 11) ~= '{"code":200' then failures = failures + 1 end
end

function done(summary, latency, requests)
    local f = 0
    for _, t in ipairs(threads) do f = f + t:get("failures") end
    io.write(string.format("wrk_requests %d\n", summary.requests))
    io.write(string.format("wrk_requests_per_s %.0f\n", summary.requests / (summary.duration / 1e6)))
    io.write(string.format("p50_ms %.2f\np99_ms %.2f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
    io.write(string.format("errors %d\n", f + summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
