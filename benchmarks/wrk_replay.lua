-- wrk script for bench_served.py: replays pre-signed Slack events, each exactly once.
--
-- WARROOM_BENCH_REQUESTS names a file with one request a line: timestamp, signature and body,
-- separated by tabs. Each request wrk sends is the next line. Once every line is sent, a
-- connection waits (delay) instead of sending more, so wrk's latency figures hold the events
-- only. When the first request is sent the script prints "started"; when every event has been
-- answered it prints "answered N" and stops its thread. bench_served.py times the two lines and
-- then interrupts wrk, whose own clock would otherwise run for its whole -d duration.

local requests = {}
local sent, answered = 0, 0
local checked = false
local IDLE_MS = 60000

function init(args)
  for line in io.lines(os.getenv("WARROOM_BENCH_REQUESTS")) do
    local ts, sig, body = line:match("^(%d+)\t([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["X-Slack-Request-Timestamp"] = ts,
      ["X-Slack-Signature"] = sig,
    }, body)
  end
end

function delay()
  if sent >= #requests then return IDLE_MS end
  return 0
end

function request()
  -- wrk 4 calls request() once before the run, to check what it returns; that one is not sent.
  if not checked then
    checked = true
    return requests[1]
  end
  sent = sent + 1
  if sent == 1 then
    io.write("started\n")
    io.stdout:flush()
  end
  if sent <= #requests then return requests[sent] end
  -- Only after IDLE_MS with events still unanswered: something harmless to keep wrk going.
  return wrk.format("GET", "/healthz")
end

function response(status, headers, body)
  answered = answered + 1
  if answered == #requests then
    io.write("answered " .. answered .. "\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

-- The latency distribution as quantiles (microseconds), for bench_served.py to merge the runs
-- of a long replay: every half percent up to 95, then every twentieth of a percent.
function done(summary, latency, requests)
  local p = 0.5
  while p <= 100.001 do
    io.write(string.format("quantile %.2f %d\n", p, latency:percentile(p)))
    if p < 95 then p = p + 0.5 else p = p + 0.05 end
  end
  io.stdout:flush()
end
