-- wrk script: every 50th request of each connection's stream is a 200 ms /sleep (2%), the rest
-- /hello. It shows head-of-line blocking: in a server that runs handlers on its event loop, the
-- clients that share a loop with a sleeping request wait for it.
local n = 0
request = function()
  n = n + 1
  if n % 50 == 0 then
    return wrk.format("GET", "/sleep?ms=200")
  end
  return wrk.format("GET", "/hello")
end
