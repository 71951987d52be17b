-- Ardour checks for this call when it scans scripts; the guard lets a plain
-- Lua interpreter load the file for the helper tests.
if ardour then
  ardour {
    ["type"] = "EditorAction",
    name = "acapella: Separate Region",
    license = "MIT",
    author = "acapella",
    description = [[Run `acapella separate` on the selected audio region and add one track per stem (vocals, accompaniment) holding a region at the same position, offset and length. The original region is untouched.]],
  }
end

-- Full path of the acapella command when Ardour's PATH does not include it
-- (Ardour started from a desktop launcher rarely sees a virtualenv's bin/).
local ACAPELLA = "acapella"
local STEMS = { "vocals", "accompaniment" }
local MODEL = "default"

local M = {}

function M.quote(arg)
  return "'" .. arg:gsub("'", [['\'']]) .. "'"
end

function M.basename_no_ext(path)
  local name = path:match("([^/]+)$") or path
  return name:match("^(.+)%.[^.]*$") or name
end

-- One run for all channel files of the region: Ardour keeps each channel of
-- a region in its own mono source file. --force so that running again on
-- the same region refreshes the stems instead of failing on them.
function M.build_command(acapella, inputs, out_dir, stems, model)
  local parts = { M.quote(acapella), "separate" }
  for _, input in ipairs(inputs) do
    parts[#parts + 1] = M.quote(input)
  end
  parts[#parts + 1] = "-o"
  parts[#parts + 1] = M.quote(out_dir)
  parts[#parts + 1] = "--stems"
  parts[#parts + 1] = M.quote(table.concat(stems, ","))
  parts[#parts + 1] = "--format"
  parts[#parts + 1] = "wav"
  if model and model ~= "default" then
    parts[#parts + 1] = "--model"
    parts[#parts + 1] = M.quote(model)
  end
  parts[#parts + 1] = "--force"
  parts[#parts + 1] = "--quiet"
  return table.concat(parts, " ")
end

-- Where `acapella separate` writes each stem of each input:
-- OUT_DIR/<input name>/<stem>.wav. Result: stem -> list of per-channel files,
-- in channel order, ready to be merged back into one multi-channel track.
function M.stem_paths(out_dir, inputs, stems)
  local paths = {}
  for _, stem in ipairs(stems) do
    local files = {}
    for _, input in ipairs(inputs) do
      files[#files + 1] = out_dir .. "/" .. M.basename_no_ext(input) .. "/" .. stem .. ".wav"
    end
    paths[stem] = files
  end
  return paths
end

-- Run a shell command; return true, or nil and the last line it printed.
function M.run(command)
  local pipe = io.popen(command .. " 2>&1", "r")
  if not pipe then
    return nil, "could not start: " .. command
  end
  local output = pipe:read("a") or ""
  local ok, _, code = pipe:close()
  if ok then
    return true
  end
  local last = nil
  for line in output:gmatch("[^\r\n]+") do
    if line:match("%S") then last = line end
  end
  return nil, "acapella separate failed: " .. (last or ("exit status " .. tostring(code)))
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function show_error(message)
  LuaDialog.Message("acapella", message, LuaDialog.MessageType.Error, LuaDialog.ButtonType.Close):run()
end

-- Route names are unique in a session, so they identify the new tracks.
local function route_names()
  local names = {}
  for route in Session:get_routes():iter() do
    names[route:name()] = true
  end
  return names
end

local function separate_selected_region()
  local regions = Editor:get_selection().regions:regionlist()
  local region = nil
  for r in regions:iter() do
    region = r
    break
  end
  if region == nil then
    return show_error("Select an audio region first.")
  end
  local audio = region:to_audioregion()
  if audio:isnil() then
    return show_error("The selected region is not audio.")
  end

  local inputs = {}
  for channel = 0, audio:n_channels() - 1 do
    local source = audio:source(channel):to_filesource()
    if source:isnil() then
      return show_error("Channel " .. (channel + 1) .. " of the region has no audio file.")
    end
    local path = source:path()
    if not file_exists(path) then
      return show_error("Cannot read the region's audio file: " .. path)
    end
    inputs[#inputs + 1] = path
  end

  local out_dir = Session:path() .. "/acapella"
  os.execute("mkdir -p " .. M.quote(out_dir))
  local ok, err = M.run(M.build_command(ACAPELLA, inputs, out_dir, STEMS, MODEL))
  if not ok then
    return show_error(err)
  end
  local paths = M.stem_paths(out_dir, inputs, STEMS)
  for _, stem in ipairs(STEMS) do
    for _, path in ipairs(paths[stem]) do
      if not file_exists(path) then
        return show_error("acapella separate reported success but " .. stem .. " is missing at " .. path)
      end
    end
  end

  for _, stem in ipairs(STEMS) do
    local files = C.StringVector()
    for _, path in ipairs(paths[stem]) do
      files:push_back(path)
    end
    local before = route_names()
    -- The stem files share the source files' timeline: import the whole
    -- file, then give the new region the original's offset, length and
    -- position. Merge the per-channel files into one track.
    Editor:do_import(files, Editing.ImportMergeFiles, Editing.ImportAsTrack, ARDOUR.SrcQuality.SrcBest,
      ARDOUR.MidiTrackNameSource.SMFTrackName, ARDOUR.MidiTempoMapDisposition.SMFTempoIgnore,
      region:position(), ARDOUR.PluginInfo(), ARDOUR.Track(), false)
    for route in Session:get_routes():iter() do
      if not before[route:name()] then
        route:set_name(region:name() .. " - " .. stem)
        local track = route:to_track()
        if not track:isnil() then
          for new_region in track:playlist():region_list():iter() do
            new_region:set_length(region:length())
            new_region:set_start(region:start())
            new_region:set_position(region:position())
          end
        end
      end
    end
  end
end

function factory()
  return function()
    local ok, err = pcall(separate_selected_region)
    if not ok then
      show_error("acapella: " .. tostring(err))
    end
  end
end

return M
