-- @description acapella: separate the selected item into stem tracks
-- @version 0.1.0
-- @about
--   Runs `acapella separate` on the audio file of the selected item's active
--   take and inserts one new track per stem right under the item's track, with
--   an item at the same position, length, take offset and rate, so the stems
--   line up with the original and sum to it. The original item is untouched.
--
--   Install: Actions > Show action list > New action > Load ReaScript, pick
--   this file. Set ACAPELLA below if `acapella` is not on REAPER's PATH.

-- Full path of the acapella command when REAPER's PATH does not include it
-- (REAPER started from a desktop launcher rarely sees a virtualenv's bin/).
local ACAPELLA = "acapella"
local STEMS = { "vocals", "accompaniment" }
local MODEL = "default"
local TIMEOUT_MS = 30 * 60 * 1000

local M = {}

function M.is_windows(os_name)
  return (os_name or ""):match("^Win") ~= nil
end

-- Quote one argument for the shell that runs the command line: POSIX sh
-- single quotes, or cmd.exe-style double quotes on Windows.
function M.quote(arg, windows)
  if windows then
    return '"' .. arg:gsub('"', '""') .. '"'
  end
  return "'" .. arg:gsub("'", [['\'']]) .. "'"
end

-- The folder for this run: OUT_DIR/<n>, n one more than the highest number
-- among `existing` (the names already in OUT_DIR). Items play the stem files
-- in place, so a run must never write where an earlier run did.
function M.run_dir(out_dir, existing, windows)
  local highest = 0
  for _, name in ipairs(existing) do
    local n = tonumber(name:match("^%d+$"))
    if n and n > highest then highest = n end
  end
  return M.join(out_dir, tostring(highest + 1), windows)
end

function M.join(dir, name, windows)
  local sep = windows and "\\" or "/"
  if dir:sub(-1) == "/" or dir:sub(-1) == "\\" then
    return dir .. name
  end
  return dir .. sep .. name
end

-- The command line `acapella separate` is run with. No --force: the run
-- folder is new, so nothing there may be replaced. --json: the CLI says
-- where each stem went, so this script never rebuilds its naming rule.
function M.build_command(opts)
  local windows = opts.windows
  local parts = {
    M.quote(opts.acapella, windows),
    "separate",
    M.quote(opts.input, windows),
    "-o", M.quote(opts.out_dir, windows),
    "--stems", M.quote(table.concat(opts.stems, ","), windows),
    "--format", "wav",
  }
  if opts.model and opts.model ~= "default" then
    parts[#parts + 1] = "--model"
    parts[#parts + 1] = M.quote(opts.model, windows)
  end
  parts[#parts + 1] = "--quiet"
  parts[#parts + 1] = "--json"
  return table.concat(parts, " ")
end

-- `acapella separate --json` prints one JSON record per input; this reads
-- one (objects, arrays, strings, numbers, true, false, null). Strings come
-- back as UTF-8 bytes; \udc80-\udcff (a file-name byte that is not UTF-8)
-- as that byte.
function M.json_decode(text)
  local pos = 1
  local function fail(what)
    error("cannot read acapella's JSON record (" .. what .. " at byte " .. pos .. ")", 0)
  end
  local function skip()
    pos = text:find("[^ \t\r\n]", pos) or #text + 1
  end
  local value
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = text:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1 break end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        local simple = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
        if simple[e] then
          out[#out + 1] = simple[e]
          pos = pos + 2
        elseif e == "u" then
          local code = tonumber(text:sub(pos + 2, pos + 5), 16) or fail("bad \\u escape")
          pos = pos + 6
          if code >= 0xD800 and code < 0xDC00 and text:sub(pos, pos + 1) == "\\u" then
            local low = tonumber(text:sub(pos + 2, pos + 5), 16) or fail("bad \\u escape")
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
            pos = pos + 6
          end
          if code >= 0xDC80 and code <= 0xDCFF then
            out[#out + 1] = string.char(code - 0xDC00)
          else
            out[#out + 1] = utf8.char(code)
          end
        else
          fail("bad escape")
        end
      else
        local run = text:match('^[^"\\]+', pos)
        out[#out + 1] = run
        pos = pos + #run
      end
    end
    return table.concat(out)
  end
  function value()
    skip()
    local c = text:sub(pos, pos)
      if c == "{" or c == "[" then
        local close, out = c == "{" and "}" or "]", {}
        pos = pos + 1
        skip()
        if text:sub(pos, pos) == close then pos = pos + 1 return out end
        while true do
          skip()
          if close == "}" then
            if text:sub(pos, pos) ~= '"' then fail("expected a key") end
            local key = str()
            skip()
            if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
            pos = pos + 1
            out[key] = value()
          else
            out[#out + 1] = value()
          end
          skip()
          local sep = text:sub(pos, pos)
          pos = pos + 1
          if sep == close then return out end
          if sep ~= "," then fail("expected ',' or '" .. close .. "'") end
        end
      elseif c == '"' then
      return str()
    end
    for word, v in pairs({ ["true"] = true, ["false"] = false, ["null"] = M.null }) do
      if text:sub(pos, pos + #word - 1) == word then
        pos = pos + #word
        return v
      end
    end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if num and #num > 0 then
      pos = pos + #num
      return tonumber(num)
    end
    fail("unexpected character")
  end
  local ok, result = pcall(value)
  if not ok then
    return nil, result
  end
  return result
end

-- JSON null, kept apart from a missing key.
M.null = setmetatable({}, { __tostring = function() return "null" end })

-- The record of the one input in acapella's output (its JSON lines among
-- any messages), or nil and the reason there is none, or why it failed.
function M.read_record(output, code)
  local record, last = nil, nil
  for line in output:gmatch("[^\r\n]+") do
    if line:match("^{") then
      local r, err = M.json_decode(line)
      if not r then return nil, err end
      record = r
    elseif line:match("%S") then
      last = line
    end
  end
  if record and record.status == "failed" then
    return nil, "acapella separate failed: " .. tostring(record.reason)
  end
  if not record or (code ~= nil and code ~= 0) then
    return nil, "acapella separate failed: " .. (last or ("exit status " .. tostring(code)))
  end
  return record
end

-- ExecProcess answers "<exit code>\n<output>", or nil when it could not
-- start. Result: the input's --json record, or nil and a message.
function M.parse_exec_result(result)
  if result == nil then
    return nil, "could not start the acapella command"
  end
  local code, output = result:match("^(%-?%d+)\n?(.*)$")
  code = tonumber(code)
  if code == nil then
    return nil, "unexpected reply from ExecProcess: " .. result:sub(1, 80)
  end
  return M.read_record(output, code)
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function fail(message)
  reaper.ShowMessageBox(message, "acapella", 0)
end

function M.main()
  local windows = M.is_windows(reaper.GetOS())
  local item = reaper.GetSelectedMediaItem(0, 0)
  if not item then return fail("Select an audio item first.") end
  local take = reaper.GetActiveTake(item)
  if not take or reaper.TakeIsMIDI(take) then return fail("The selected item has no audio take.") end

  local source = reaper.GetMediaItemTake_Source(take)
  -- Section and reversed takes wrap the file in a source with its own
  -- timeline, so stems of the file would not line up with the take.
  if reaper.GetMediaSourceParent(source) then
    return fail("The selected take is a section or reversed source; glue the item first (Item > Glue items).")
  end
  local input = reaper.GetMediaSourceFileName(source, "")
  if input == "" or not file_exists(input) then
    return fail("Cannot find the audio file of the selected item: " .. input)
  end

  local base = M.join(reaper.GetProjectPath(""), "acapella", windows)
  local existing = {}
  for _, enumerate in ipairs({ reaper.EnumerateSubdirectories, reaper.EnumerateFiles }) do
    enumerate(base, -1)  -- REAPER caches listings; -1 makes it read the folder again
    local i = 0
    while true do
      local name = enumerate(base, i)
      if not name then break end
      existing[#existing + 1] = name
      i = i + 1
    end
  end
  local out_dir = M.run_dir(base, existing, windows)
  reaper.RecursiveCreateDirectory(out_dir, 0)
  local command = M.build_command({
    acapella = ACAPELLA, input = input, out_dir = out_dir, stems = STEMS, model = MODEL, windows = windows,
  })
  if not windows then
    -- ExecProcess does not use a shell on every platform; run one so the
    -- quoting above is what gets interpreted.
    command = "/bin/sh -c " .. M.quote(command, false)
  end
  local record, err = M.parse_exec_result(reaper.ExecProcess(command, TIMEOUT_MS))
  if not record then return fail(err) end

  local paths = record.stems or {}
  for _, stem in ipairs(STEMS) do
    if type(paths[stem]) ~= "string" or not file_exists(paths[stem]) then
      return fail("acapella separate reported success but " .. stem .. " is missing at " .. tostring(paths[stem]))
    end
  end

  local track = reaper.GetMediaItem_Track(item)
  local track_index = math.floor(reaper.GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER"))  -- 1-based
  local _, take_name = reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", "", false)
  local position = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
  local length = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
  local offset = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")
  local rate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")
  local preserve_pitch = reaper.GetMediaItemTakeInfo_Value(take, "B_PPITCH")

  reaper.Undo_BeginBlock()
  reaper.PreventUIRefresh(1)
  for n, stem in ipairs(STEMS) do
    -- IP_TRACKNUMBER is 1-based and InsertTrackAtIndex 0-based, so this is
    -- the slot right under the item's track (and under earlier stems).
    local index = track_index + n - 1
    reaper.InsertTrackAtIndex(index, true)
    local new_track = reaper.GetTrack(0, index)
    reaper.GetSetMediaTrackInfo_String(new_track, "P_NAME", take_name .. " - " .. stem, true)
    local new_item = reaper.AddMediaItemToTrack(new_track)
    local new_take = reaper.AddTakeToMediaItem(new_item)
    reaper.SetMediaItemTake_Source(new_take, reaper.PCM_Source_CreateFromFile(paths[stem]))
    reaper.GetSetMediaItemTakeInfo_String(new_take, "P_NAME", take_name .. " - " .. stem, true)
    reaper.SetMediaItemInfo_Value(new_item, "D_POSITION", position)
    reaper.SetMediaItemInfo_Value(new_item, "D_LENGTH", length)
    -- The stem file has the source file's timeline, so the same take offset
    -- and rate select the same audio.
    reaper.SetMediaItemTakeInfo_Value(new_take, "D_STARTOFFS", offset)
    reaper.SetMediaItemTakeInfo_Value(new_take, "D_PLAYRATE", rate)
    reaper.SetMediaItemTakeInfo_Value(new_take, "B_PPITCH", preserve_pitch)
  end
  reaper.PreventUIRefresh(-1)
  reaper.UpdateArrange()
  reaper.Undo_EndBlock("acapella: separate item into stems", -1)
end

-- Inside REAPER `reaper` is defined and the action runs; anywhere else (the
-- tests run this file with a plain Lua) only the helpers are returned.
if reaper then
  M.main()
end
return M
