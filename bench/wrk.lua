-- Requests for wrk: GET $BENCH_PATH, with "Authorization: Bearer <key>" rotating over the
-- comma-separated $BENCH_KEYS when set. Requests are built once per thread, so both endpoints
-- cost the client the same. done() prints one machine-readable line for bench.py, with the
-- latency histogram (each distinct latency in µs and how many responses took it), so that
-- bench.py can take percentiles over several runs together.

local requests = {}
local counter = 0

function init(args)
    local path = os.getenv("BENCH_PATH") or "/"
    local keys = os.getenv("BENCH_KEYS") or ""
    for key in string.gmatch(keys, "[^,]+") do
        requests[#requests + 1] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. key })
    end
    if #requests == 0 then
        requests[1] = wrk.format("GET", path)
    end
end

function request()
    counter = counter + 1
    return requests[counter % #requests + 1]
end

function done(summary, latency, _)
    local e = summary.errors
    local histogram = {}
    for i = 1, #latency do
        local value, count = latency(i)
        histogram[i] = string.format("[%d, %d]", value, count)
    end
    io.write(string.format(
        'BENCH {"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, ' ..
        '"read_errors": %d, "write_errors": %d, "timeouts": %d, "latency_us": [%s]}\n',
        summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
        table.concat(histogram, ", ")))
end
