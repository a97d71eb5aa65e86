-- wrk script for bench/ingest.py: POST /v1/events wire-format v1 batches with unique events.
--
--   wrk ... -s bench/events.lua http://127.0.0.1:PORT/v1/events -- SITE ORIGIN RUN PHASE EVENTS PAGE_EVENTS
--
-- SITE    the site's public key          ORIGIN       one of the site's origins (sent as the Origin header)
-- RUN     integer < 2^31, one per run    PHASE        integer < 4096 (0 = warm-up, 1 = measured)
-- EVENTS  events per request (1 to 500)  PAGE_EVENTS  events per page before the next page (0: one page)
--
-- Event and page ids are UUID-shaped strings built from RUN (its low 16 bits in event ids), the wrk thread
-- number, PHASE and per-thread counters, so no two events of one benchmark run share an id. Event ids begin
-- with the request's time like the shim's UUIDv7 ids (whole seconds here, in ms), which decides how SQLite's
-- unique index takes them. Each wrk thread sends page after page (one batch never spans two pages); seq
-- counts from 1 within a page. A page is one agent's pop-up (agentEmail), so each agent's history is one
-- page long. Events alternate between a CCC hash (a voice call rings, is answered, ends: status 100, 200,
-- 400, then the next call with another caller) and a ccc-sdk sendCard message. ts is a few ms before
-- sent_at, both the current time in ms. When wrk finishes, done() prints one line "WRK_RESULT key=value ..."
-- that bench/ingest.py parses.

local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
end

local site, run_id, phase, per_request, page_events
local page, page_id, agent, prefix = 0, nil, nil, nil
local seq, n, calls = 0, 0, 0
local statuses = { 100, 200, 400 }

local function next_page()
   page = page + 1
   seq = 0
   page_id = string.format("%08x-%04x-4%03x-9%03x-%012x", run_id, tid, phase, 0, page)
   agent = string.format("agent-%x-%x-%x-%x@bench.local", run_id, tid, phase, page)
   prefix = '{"v":1,"site":"' .. site .. '","page":{"id":"' .. page_id
      .. '","url":"https://bench.local/ticket/list/"},"sent_at":'
end

function init(args)
   site = args[1]
   local origin = args[2]
   run_id = tonumber(args[3])
   phase = tonumber(args[4])
   per_request = tonumber(args[5])
   page_events = tonumber(args[6] or "0")
   next_page()
   wrk.method = "POST"
   wrk.headers["Origin"] = origin
   wrk.headers["Content-Type"] = "text/plain"
end

local function event(now)
   seq = seq + 1
   n = n + 1
   local id = string.format("%08x-%04x-7%03x-%04x-%04x%08x", math.floor(now / 65536), now % 65536, phase,
      0x8000 + tid, run_id % 65536, n)
   if seq % 2 == 1 then
      local step = (seq - 1) / 2 % 3
      if step == 0 then
         calls = calls + 1
      end
      return '{"id":"' .. id .. '","seq":' .. seq .. ',"ts":' .. (now - 50)
         .. ',"type":"hash","trigger":"hashchange","hash":"#?mobile=1888'
         .. string.format("%07d", calls % 10000000) .. "&status=" .. statuses[step + 1]
         .. "&type=phone&agentEmail=" .. agent .. '&sdkAppId=1400000001"}'
   end
   return '{"id":"' .. id .. '","seq":' .. seq .. ',"ts":' .. (now - 20)
      .. ',"type":"message","data":{"source":"ccc-sdk","payload":{"event":"sendCard",'
      .. '"message":{"header":"Ticket ' .. n .. '","desc":"inbound call","url":"https://bench.local/t/'
      .. n .. '"}}}}'
end

function request()
   if page_events > 0 and seq + per_request > page_events then
      next_page()
   end
   local now = os.time() * 1000
   local parts = {}
   for i = 1, per_request do
      parts[i] = event(now)
   end
   local body = prefix .. now .. ',"events":[' .. table.concat(parts, ",") .. "]}"
   return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d "
         .. "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
