-- bench_post.lua - the wrk request script of scripts/bench.
--
-- Every request is a POST of a small JSON body with a different X-User-Id (a counter modulo
-- 100000), so the proxies hash many distinct users. The request bytes are built by
-- concatenation, not wrk.format(), so the load generator spends as little CPU as possible on
-- the shared machine. One argument after "--" makes the body that many bytes instead (the
-- same bytes scripts/bench's preflight sends). Usable by hand too:
--   wrk -t1 -c64 -d10s --latency -s scripts/bench_post.lua http://127.0.0.1:8080/predict
--   wrk -t1 -c64 -d10s -s scripts/bench_post.lua http://127.0.0.1:8080/predict -- 1048576

local body = '{"features":[0.12,0.34,0.56,0.78],"model_input":"bench"}'
local users = 100000
local counter = 0
local head, tail

init = function(args)
	local size = tonumber(args[1] or "")
	if size ~= nil and size > 0 then
		body = string.rep("x", size)
	end
	local host = wrk.headers["Host"] or (wrk.host .. ":" .. wrk.port)
	head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. host ..
		"\r\nContent-Type: application/json\r\nContent-Length: " .. #body ..
		"\r\nX-User-Id: u-"
	tail = "\r\n\r\n" .. body
end

request = function()
	counter = counter + 1
	return head .. (counter % users) .. tail
end
