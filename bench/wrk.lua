-- wrk script for bench/run.sh.
--   BENCH_POST unset   : GET (the URL's path)
--   BENCH_POST=cl      : POST of BENCH_POST_BYTES (default 102400) bytes with Content-Length
--   BENCH_POST=chunked : the same body with Transfer-Encoding: chunked, in 16 KiB chunks
-- done() prints one machine-readable line, WRKRESULT ..., that run.sh collects.

local mode = os.getenv("BENCH_POST")
local size = tonumber(os.getenv("BENCH_POST_BYTES") or "102400")
local raw

init = function(args)
   if mode == nil or mode == "" then
      return
   end
   local body = string.rep("0123456789abcdef", math.floor(size / 16)) .. string.rep("z", size % 16)
   if mode == "cl" then
      wrk.method = "POST"
      wrk.body = body
      wrk.headers["Content-Type"] = "application/octet-stream"
      raw = wrk.format()
   elseif mode == "chunked" then
      -- wrk.format() always adds Content-Length when there is a body, so the request is
      -- assembled by hand: CL and TE together would be a 400.
      local parts, pos, step = {}, 1, 16384
      while pos <= #body do
         local piece = string.sub(body, pos, pos + step - 1)
         parts[#parts + 1] = string.format("%x\r\n%s\r\n", #piece, piece)
         pos = pos + step
      end
      parts[#parts + 1] = "0\r\n\r\n"
      raw = "POST " .. wrk.path .. " HTTP/1.1\r\n" ..
            "Host: " .. wrk.host .. ":" .. wrk.port .. "\r\n" ..
            "Content-Type: application/octet-stream\r\n" ..
            "Transfer-Encoding: chunked\r\n\r\n" .. table.concat(parts)
   else
      error("BENCH_POST must be empty, cl or chunked, not " .. mode)
   end
end

if mode ~= nil and mode ~= "" then
   request = function()
      return raw
   end
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRKRESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
end
