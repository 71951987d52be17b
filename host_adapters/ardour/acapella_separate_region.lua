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

-- Ardour does not run this file as it is: it keeps only factory(), copied
-- without the variables around it (string.dump), and calls that. So all the
-- code and settings live inside factory(). The last line returns the helper
-- table for scripts and tests that load the file themselves.
function factory(params)
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

  -- The audio file of each channel of an audio region, in channel order, or
  -- nil and a message.
  function M.region_files(region)
    local audio = region:to_audioregion()
    if audio:isnil() then
      return nil, "The selected region is not audio."
    end
    local inputs = {}
    for channel = 0, audio:n_channels() - 1 do
      local source = audio:source(channel):to_filesource()
      if source:isnil() then
        return nil, "Channel " .. (channel + 1) .. " of the region has no audio file."
      end
      local path = source:path()
      if not file_exists(path) then
        return nil, "Cannot read the region's audio file: " .. path
      end
      inputs[#inputs + 1] = path
    end
    return inputs
  end

  -- Run acapella on the region's channel files. The stems go to
  -- <session>/acapella/. Result: stem -> per-channel stem files (see
  -- stem_paths), or nil and a message.
  function M.separate_files(session, region, opts)
    local inputs, err = M.region_files(region)
    if not inputs then
      return nil, err
    end
    local out_dir = session:path():gsub("/+$", "") .. "/acapella"
    os.execute("mkdir -p " .. M.quote(out_dir))
    local ok
    ok, err = M.run(M.build_command(opts.acapella, inputs, out_dir, opts.stems, opts.model))
    if not ok then
      return nil, err
    end
    local paths = M.stem_paths(out_dir, inputs, opts.stems)
    for _, stem in ipairs(opts.stems) do
      for _, path in ipairs(paths[stem]) do
        if not file_exists(path) then
          return nil, "acapella separate reported success but " .. stem .. " is missing at " .. path
        end
      end
    end
    return paths
  end

  -- Name a freshly imported stem track "<region> - <stem>" and give its
  -- region(s) the original's source offset, length and position. The stem
  -- files share the source files' timeline, so the import brings in the whole
  -- file: first cut it to the original's length, then move its start to the
  -- original's offset (in this order, so it never runs past the file's end),
  -- then place it.
  function M.place_stem(route, region, stem)
    route:set_name(region:name() .. " - " .. stem)
    local track = route:to_track()
    if track:isnil() then
      return
    end
    for new_region in track:playlist():region_list():iter() do
      new_region:set_length(region:length())
      new_region:set_start(region:start())
      new_region:set_position(region:position())
    end
  end

  -- Route names are unique in a session, so they identify new tracks.
  local function route_names(session)
    local names = {}
    for route in session:get_routes():iter() do
      names[route:name()] = true
    end
    return names
  end

  -- The whole job for one region: separate it, then for each stem call
  -- opts.import(files, region) (which must add one track holding the merged
  -- per-channel stem files) and name and place the track it added.
  -- Result: stem -> new route, or nil and a message.
  function M.separate_region(session, region, opts)
    local paths, err = M.separate_files(session, region, opts)
    if not paths then
      return nil, err
    end
    local added = {}
    for _, stem in ipairs(opts.stems) do
      local before = route_names(session)
      opts.import(paths[stem], region)
      for route in session:get_routes():iter() do
        if not before[route:name()] then
          M.place_stem(route, region, stem)
          added[stem] = route
        end
      end
      if not added[stem] then
        return nil, "Ardour did not add a track for " .. stem .. " (" .. paths[stem][1] .. ")"
      end
    end
    return added
  end

  -- The editor's import: merge the per-channel files into one new track, at
  -- the region's position. The same call as Ardour's example script
  -- s_import_files.lua, in 7.3 and in Ardour's current source.
  local function editor_import(files, region)
    local list = C.StringVector()
    for _, path in ipairs(files) do
      list:push_back(path)
    end
    Editor:do_import(list, Editing.ImportMergeFiles, Editing.ImportAsTrack, ARDOUR.SrcQuality.SrcBest,
      ARDOUR.MidiTrackNameSource.SMFTrackName, ARDOUR.MidiTempoMapDisposition.SMFTempoIgnore,
      region:position(), ARDOUR.PluginInfo(), ARDOUR.Track(), false)
  end

  local function show_error(message)
    LuaDialog.Message("acapella", message, LuaDialog.MessageType.Error, LuaDialog.ButtonType.Close):run()
  end

  local function separate_selected_region()
    local region = nil
    for r in Editor:get_selection().regions:regionlist():iter() do
      region = r
      break
    end
    if region == nil then
      return show_error("Select an audio region first.")
    end
    local ok, err = M.separate_region(Session, region, {
      acapella = ACAPELLA, stems = STEMS, model = MODEL, import = editor_import,
    })
    if not ok then
      show_error(err)
    end
  end

  if params == "module" then
    return M
  end
  return function()
    local ok, err = pcall(separate_selected_region)
    if not ok then
      show_error("acapella: " .. tostring(err))
    end
  end
end

return factory("module")
