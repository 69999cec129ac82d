-- wrk script for the soak: rotates over the soak policy's hosts (healthy, half dead, flaky,
-- dead, slow) and asks for the connection to be closed on every other request, so that
-- connections churn all the time.
local hosts = { "ok", "ok", "ok", "half", "half", "flaky", "dead", "slow" }
local n = 0

request = function()
    n = n + 1
    local headers = { ["Host"] = hosts[(n % #hosts) + 1] }
    if n % 2 == 0 then
        headers["Connection"] = "close"
    end
    return wrk.format("GET", "/", headers)
end
