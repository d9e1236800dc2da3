-- wrk script for the clicks and conversions benchmarks (tests/bench/clicks.py, tests/bench/conversions.py).
--
--   wrk ... -s wrk_requests.lua -- <expected status> visitors
--       GET as given on the command line, each request from another address (X-Forwarded-For;
--       the server runs with NUM_PROXIES=1): many visitors from many addresses, the realistic
--       case, instead of one address that the per-IP flood limit would flag after 60 clicks.
--   wrk ... -s wrk_requests.lua -- <expected status> conversions <run id> <visitors>
--       POST /api/v1/conversions with a unique external id and customer id per request, for
--       one of <visitors> visitors whose clicks the benchmark inserted beforehand.
--
-- wrk only counts non-2xx/3xx statuses; a 200 where a 302 is due, or a 200 where a 201 is due
-- (a repeated external id), would pass unnoticed, so every response is checked against the
-- expected status and done() prints "unexpected_status <n>" (summed over the threads).

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   expected = tonumber(args[1])
   mode = args[2]
   run_id = args[3] or "x"
   visitors = tonumber(args[4] or "1")
   counter = 0
   unexpected = 0
   first_unexpected = ""
end

local function visitor_uuid(n)
   -- Same layout as the benchmark's SQL: 00000000-0000-4000-8000-<n, 12 digits>.
   return string.format("00000000-0000-4000-8000-%012d", n)
end

function request()
   counter = counter + 1
   if mode == "conversions" then
      local id = string.format("%s-%d-%d", run_id, tid, counter)
      local visitor = visitor_uuid((tid * 7919 + counter * 31) % visitors + 1)
      local body = string.format(
         '{"external_id":"ord-%s","event_type":"purchase","amount":"49.90","currency":"USD",' ..
         '"visitor_id":"%s","customer_id":"cus-%s"}', id, visitor, id)
      return wrk.format("POST", nil, nil, body)
   end
   -- <10 + thread>.<counter, 24 bits>: 16 million addresses per thread before one repeats.
   wrk.headers["X-Forwarded-For"] = string.format(
      "%d.%d.%d.%d", 10 + tid, math.floor(counter / 65536) % 256, math.floor(counter / 256) % 256, counter % 256)
   return wrk.format(nil, nil, nil, nil)
end

function response(status, headers, body)
   if status ~= expected then
      unexpected = unexpected + 1
      if first_unexpected == "" then
         first_unexpected = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
end

function done(summary, latency, requests)
   local total = 0
   local sample = ""
   for _, thread in ipairs(threads) do
      total = total + thread:get("unexpected")
      if sample == "" then
         sample = thread:get("first_unexpected")
      end
   end
   io.write(string.format("unexpected_status %d\n", total))
   if sample ~= "" then
      io.write("first_unexpected " .. string.gsub(sample, "\n", " ") .. "\n")
   end
end
