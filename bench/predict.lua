-- wrk: POST /predict with a multipart field "image", cycling through the PNGs
-- in $PNG_DIR; prints one JSON line (requests, rps, errors, latency).
local dir = os.getenv("PNG_DIR") or "pngs"
local path = os.getenv("PREDICT_PATH") or "/predict"
local boundary = "----mnistdbench7MA4YWxkTrZu0gW"
local bodies = {}
local p = io.popen('ls "' .. dir .. '"/*.png')
for file in p:lines() do
  local f = assert(io.open(file, "rb")); local png = f:read("*a"); f:close()
  bodies[#bodies + 1] = "--" .. boundary .. "\r\n" ..
    'Content-Disposition: form-data; name="image"; filename="x.png"\r\n' ..
    "Content-Type: image/png\r\n\r\n" .. png .. "\r\n--" .. boundary .. "--\r\n"
end
p:close()
local headers = {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", path, headers, bodies[i])
end
done = dofile(os.getenv("WRK_REPORT") or "report.lua")
