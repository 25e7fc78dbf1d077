-- Runs an Argo CD health.lua the way Argo CD does: the script is a chunk that reads the global
-- `obj` and returns `hs`. Lua 5.1 with lua-cjson (Debian: lua5.1, lua-cjson).
--
--   lua5.1 tests/argocd/run_health.lua HEALTH.lua OBJECT.json
--       prints {"status":"Healthy|Progressing|Degraded|...","message":"..."} for one object
--   lua5.1 tests/argocd/run_health.lua --test HEALTH.lua health_test.json [KSTATUS]
--       checks every case of the fixture set against its healthStatus, and against its kstatus
--       verdict through the binary KSTATUS when given (tests/tools/kstatus); exits 1 on a mismatch
local cjson = require("cjson")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- Argo hands the script a table without JSON nulls: a null field is simply absent.
local function strip_nulls(value)
  if type(value) ~= "table" then
    return value
  end
  for k, v in pairs(value) do
    if v == cjson.null then
      value[k] = nil
    else
      strip_nulls(v)
    end
  end
  return value
end

-- The script sees only what Argo's VM offers a health check (no io, no os, no require), in a
-- fresh environment per object, so a global it leaves behind cannot leak into the next case.
local function health(script, object)
  local chunk = assert(loadfile(script))
  setfenv(chunk, {
    obj = object, ipairs = ipairs, pairs = pairs, next = next, type = type, select = select,
    tostring = tostring, tonumber = tonumber, error = error, pcall = pcall,
    string = string, table = table, math = math,
  })
  local hs = chunk()
  return { status = hs.status, message = hs.message or "" }
end

-- cjson escapes "/" as "\/": valid JSON, but messages quote URLs.
local function line(verdict)
  return (cjson.encode({ status = verdict.status, message = verdict.message }):gsub("\\/", "/"))
end

local function decode_file(path)
  return strip_nulls(cjson.decode(read(path)))
end

local function dir_of(path)
  return path:match("^(.*)/") or "."
end

local function test(script, manifest, kstatus)
  local failed, total = 0, 0
  local function check(name, tool, got, want)
    total = total + 1
    if got.status == want.status and got.message == want.message then
      print(("ok   %-40s %-8s %s"):format(name, tool, got.status))
    else
      failed = failed + 1
      print(("FAIL %-40s %-8s got %s, want %s"):format(name, tool, line(got), line(want)))
    end
  end
  for _, case in ipairs(decode_file(manifest).tests) do
    local path = dir_of(manifest) .. "/" .. case.inputPath
    check(case.inputPath, "argocd", health(script, decode_file(path)), case.healthStatus)
    if kstatus ~= nil then
      local out = io.popen(("%q %q"):format(kstatus, path))
      local verdict = cjson.decode(out:read("*a"))
      out:close()
      check(case.inputPath, "kstatus", verdict, case.kstatus)
    end
  end
  print(("%d checks, %d mismatches"):format(total, failed))
  os.exit(failed == 0 and 0 or 1)
end

if arg[1] == "--test" and arg[2] ~= nil and arg[3] ~= nil and arg[5] == nil then
  test(arg[2], arg[3], arg[4])
elseif arg[1] ~= nil and arg[2] ~= nil and arg[3] == nil then
  print(line(health(arg[1], decode_file(arg[2]))))
else
  io.stderr:write("usage: run_health.lua HEALTH.lua OBJECT.json\n" ..
    "       run_health.lua --test HEALTH.lua health_test.json [KSTATUS]\n")
  os.exit(2)
end
