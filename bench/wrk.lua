-- Requests for wrk, from the environment bench.py sets:
--   BENCH_METHOD  GET (default), POST, PATCH…
--   BENCH_PATHS   comma-separated paths, rotated over (e.g. several task ids)
--   BENCH_BODIES  JSON bodies, one a line, rotated over (sent with Content-Type: application/json)
--   BENCH_KEYS    comma-separated keys, rotated over, sent as "Authorization: <scheme> <key>"
--   BENCH_SCHEME  the Authorization scheme word (default Bearer; the Python peer's is Api-Key)
--   BENCH_COOKIE  a Cookie header (the dashboard's session)
-- Every combination is built once per thread, before the run, so each route costs the client
-- the same per request. done() prints one machine-readable line for bench.py, with the latency
-- histogram (each distinct latency in µs and how many responses took it), so that bench.py
-- can take percentiles over several runs together.

local requests = {}
local counter = 0

local function split(text, pattern)
    local items = {}
    for item in string.gmatch(text or "", pattern) do
        items[#items + 1] = item
    end
    return items
end

function init(args)
    local method = os.getenv("BENCH_METHOD") or "GET"
    local paths = split(os.getenv("BENCH_PATHS") or "/", "[^,]+")
    local bodies = split(os.getenv("BENCH_BODIES"), "[^\n]+")
    local keys = split(os.getenv("BENCH_KEYS"), "[^,]+")
    local scheme = os.getenv("BENCH_SCHEME") or "Bearer"
    local cookie = os.getenv("BENCH_COOKIE")
    if #bodies == 0 then bodies = { false } end
    if #keys == 0 then keys = { false } end
    for _, key in ipairs(keys) do
        for _, path in ipairs(paths) do
            for _, body in ipairs(bodies) do
                local headers = {}
                if key then headers["Authorization"] = scheme .. " " .. key end
                if cookie then headers["Cookie"] = cookie end
                if body then headers["Content-Type"] = "application/json" end
                requests[#requests + 1] = wrk.format(method, path, headers, body or nil)
            end
        end
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
