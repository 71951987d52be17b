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

  -- One input per call, into a folder of its own: the CLI renames repeated
  -- input names in one call (mix, mix-2, ...), and two channel files of a
  -- region may share a name in different folders.
  function M.build_command(acapella, input, out_dir, stems, model)
    local parts = { M.quote(acapella), "separate", M.quote(input), "-o", M.quote(out_dir),
                    "--stems", M.quote(table.concat(stems, ",")), "--format", "wav" }
    if model and model ~= "default" then
      parts[#parts + 1] = "--model"
      parts[#parts + 1] = M.quote(model)
    end
    -- No --force: the run folder is new, so nothing there may be replaced.
    -- --json: the CLI says where each stem went (see M.read_record).
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

  -- Run a shell command; return its --json record, or nil and a message.
  function M.run(command)
    local pipe = io.popen(command .. " 2>&1", "r")
    if not pipe then
      return nil, "could not start: " .. command
    end
    local output = pipe:read("a") or ""
    local ok, _, code = pipe:close()
    return M.read_record(output, ok and 0 or code)
  end

  local function file_exists(path)
    local f = io.open(path, "rb")
    if f then f:close() return true end
    return false
  end

  -- Make and return BASE/<n> for the first n whose folder does not exist yet.
  -- New tracks play the stem files in place, so a run must never write where
  -- an earlier run did. mkdir without -p fails on an existing folder, so two
  -- runs at once cannot take the same one.
  function M.new_run_dir(base)
    os.execute("mkdir -p " .. M.quote(base) .. " 2>/dev/null")
    for n = 1, 100000 do
      local dir = base .. "/" .. n
      if not file_exists(dir) then
        if os.execute("mkdir " .. M.quote(dir) .. " 2>/dev/null") then
          return dir
        end
        if not file_exists(dir) then
          return nil, "Cannot create the stem folder " .. dir .. ": check that " .. base .. " is writable."
        end
      end
    end
    return nil, "No free numbered folder left in " .. base .. "; clear out old stems."
  end

  -- Separate each file into a new run folder under base_dir, one call per
  -- channel file (two may share a name in different folders). Result: stem ->
  -- per-channel stem files in channel order, ready to be merged back into one
  -- multi-channel track, or nil and a message.
  function M.separate_inputs(base_dir, inputs, opts)
    local run_dir, err = M.new_run_dir(base_dir)
    if not run_dir then
      return nil, err
    end
    local paths = {}
    for _, stem in ipairs(opts.stems) do paths[stem] = {} end
    for k, input in ipairs(inputs) do
      local record
      record, err = M.run(M.build_command(opts.acapella, input, run_dir .. "/" .. k, opts.stems, opts.model))
      if not record then
        return nil, err
      end
      for _, stem in ipairs(opts.stems) do
        local path = (record.stems or {})[stem]
        if type(path) ~= "string" or not file_exists(path) then
          return nil, "acapella separate reported success but " .. stem .. " is missing at " .. tostring(path)
        end
        paths[stem][k] = path
      end
    end
    return paths
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

  -- Run acapella on the region's channel files. The stems go to a new
  -- numbered folder in <session>/acapella/. Result: stem -> per-channel stem
  -- files (see separate_inputs), or nil and a message.
  function M.separate_files(session, region, opts)
    local inputs, err = M.region_files(region)
    if not inputs then
      return nil, err
    end
    return M.separate_inputs(session:path():gsub("/+$", "") .. "/acapella", inputs, opts)
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
