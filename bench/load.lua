-- wrk script: every request takes the next line of the file given after `--` (tab-separated
-- bearer token and JSON body; either may be empty), so many members load the server at once.
-- The method and path come from the environment (BENCH_METHOD, BENCH_PATH). At the end one JSON
-- line with the counts and latency percentiles goes to stdout.
local lines = {}
local index = 0

function init(args)
  for line in io.lines(args[1]) do
    local token, body = line:match("^([^\t]*)\t(.*)$")
    lines[#lines + 1] = { token = token, body = body }
  end
  -- Threads start at different places so that they do not send the same member together.
  index = math.random(#lines)
end

function request()
  index = index % #lines + 1
  local line = lines[index]
  local headers = { ["Content-Type"] = "application/json" }
  if line.token ~= "" then headers["Authorization"] = "Bearer " .. line.token end
  local body = nil
  if line.body ~= "" then body = line.body end
  return wrk.format(os.getenv("BENCH_METHOD"), os.getenv("BENCH_PATH"), headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non2xx": %d, "socket_errors": %d, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
