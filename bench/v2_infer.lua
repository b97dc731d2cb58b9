-- wrk: POST the KServe v2 JSON infer body in $V2_BODY (one 1x784 FP32 input)
-- to $V2_PATH; prints one JSON line like predict.lua.
local f = assert(io.open(os.getenv("V2_BODY") or "v2.json", "rb"))
local body = f:read("*a"); f:close()
local path = os.getenv("V2_PATH")
local headers = {["Content-Type"] = "application/json"}
request = function()
  return wrk.format("POST", path, headers, body)
end
done = dofile(os.getenv("WRK_REPORT") or "report.lua")
