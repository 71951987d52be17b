"""The Ardour adapter run inside a real Ardour, headless.

Debian's ``ardour`` package ships ``ardour7-lua`` (Ardour's own Lua
interpreter with libardour: sessions, tracks, regions, the audio engine, no
editor). The test makes a session on the Dummy audio backend, records a
stereo region from the backend's pink-noise inputs, trims and moves it, and
runs the adapter's work function on that region with the real ``acapella``
command. The adapter is loaded the way Ardour loads an action script: only
``factory`` is kept, through ``string.dump``, without the file's other
variables.

What it cannot do: Ardour 7's Lua API has no way to make a region from an
audio file outside the editor (``Editor:do_import``), so the test's import
step adds a track holding a copy of the recorded source instead of the stem
file. Naming and placing that track are the adapter's own code; the import
call itself and the editor action (selection, dialogs) only run in the GUI:
see ``test_host_ardour_gui.py``.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import LUA_JSON, acapella_executable

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "host_adapters" / "ardour" / "acapella_separate_region.lua"
SR = 44100


def ardour_lua() -> str | None:
    for name in ("ardour8-lua", "ardour7-lua"):
        found = shutil.which(name)
        if found:
            return found
    found = sorted(glob.glob("/usr/bin/ardour*-lua"))
    return found[-1] if found else None


ARDOUR_LUA = ardour_lua()
pytestmark = pytest.mark.skipif(
    ARDOUR_LUA is None, reason="Ardour's headless Lua tool is missing (Debian: apt-get install -y ardour)"
)




# Runs inside ardour7-lua. Prints one "@@ <json>" line with what it saw.
# ardour7-lua, after `session_dir` and `SR` are set: a new session with a stereo
# track "Mix" and a region recorded on it, trimmed and moved (shared with the GUI test).
RECORD_REGION = r"""
local be = AudioEngine:set_backend("None (Dummy)", "", "")
assert(be and not be:isnil(), "no Dummy audio backend")
be:set_device_name("Pink Noise")
assert(create_session(session_dir, "session", SR), "could not create the session")

-- A stereo track and a region recorded on it from the backend's inputs.
local track = Session:new_audio_track(2, 2, nil, 1, "Mix", ARDOUR.PresentationInfo.max_order,
                                      ARDOUR.TrackMode.Normal, true):front()
track:rec_enable_control():set_value(1, PBD.GroupControlDisposition.NoGroup)
Session:maybe_enable_record(false)
Session:request_roll(ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(2500000)
Session:request_stop(false, false, ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(500000)
track:rec_enable_control():set_value(0, PBD.GroupControlDisposition.NoGroup)
Session:disable_record(false, false)
local region
for r in track:playlist():region_list():iter() do region = r end
assert(region, "nothing was recorded")
-- Trim it (source offset 0.5 s, 1.5 s long) and move it to 2 s, so that a
-- stem placed at 0 or with the file's full length would show.
region:set_length(Temporal.timecnt_t(SR * 3 // 2))
region:set_start(Temporal.timepos_t(SR // 2))
region:set_position(Temporal.timepos_t(2 * SR))
"""

DRIVER = r"""
local script, session_dir, acapella = arg[1], arg[2], arg[3]
local SR = 44100

""" + LUA_JSON + r"""
local function describe(r)
  return { name = r:name(), position = r:position():samples(), length = r:length():samples(),
           start = r:start():samples(), channels = r:to_audioregion():n_channels() }
end

local function regions_of(route)
  local list = {}
  for r in route:to_track():playlist():region_list():iter() do list[#list + 1] = describe(r) end
  return list
end

""" + RECORD_REGION + r"""local before = describe(region)

-- Load the adapter as Ardour loads an action: the file is run once to define
-- factory(), which is then kept only as bytecode, without upvalues.
ardour = function() end
loadfile(script)()
local M = load(string.dump(factory, true), nil, nil, _ENV)("module")
local action = load(string.dump(factory, true), nil, nil, _ENV)(nil)
factory = nil

-- Stand-in for Editor:do_import (ImportMergeFiles, ImportAsTrack): a new
-- track named after the file, holding one whole-file region at the given
-- position. Only the region's audio differs: it is a copy of the recorded
-- source, not the stem.
local function import(files, at)
  local name = files[1]:match("([^/]+)%.wav$")
  local t = Session:new_audio_track(#files, 2, nil, 1, name, ARDOUR.PresentationInfo.max_order,
                                    ARDOUR.TrackMode.Normal, true):front()
  local copy = ARDOUR.RegionFactory.clone_region(at, true, false)
  copy:set_start(Temporal.timepos_t(0))
  copy:set_length(Temporal.timecnt_t(at:to_audioregion():source(0):to_audiosource():readable_length()))
  t:playlist():add_region(copy, at:position(), 1, false, 0, 0, false)
end

local inputs, input_err = M.region_files(region)
local added, err = M.separate_region(Session, region, {
  acapella = acapella, stems = { "vocals", "accompaniment" }, model = "default", import = import,
})
local result = { before = before, after = describe(region), inputs = inputs or input_err,
                 action_is_function = type(action) == "function", error = err, tracks = {} }
for route in Session:get_routes():iter() do
  if not route:to_track():isnil() then
    result.tracks[route:name()] = regions_of(route)
  end
end
if added then
  result.added = {}
  for stem, route in pairs(added) do result.added[stem] = route:name() end
end
print("@@ " .. lit(result))
Session:save_state("", false, false, false, false, false)
close_session()
"""


def run_driver(tmp_path: Path) -> dict:
    driver = tmp_path / "driver.lua"
    driver.write_text(DRIVER)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    command = [ARDOUR_LUA, str(driver), str(SCRIPT), str(tmp_path / "session"), acapella_executable()]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=tmp_path, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail("ardour7-lua did not finish in 120 s:\n" + output[-3000:])
    lines = [line[3:] for line in output.splitlines() if line.startswith("@@ ")]
    assert lines, f"ardour-lua printed no result (exit {proc.returncode}):\n{output[-3000:]}"
    return json.loads(lines[-1])


def test_separate_region_in_headless_ardour(tmp_path: Path) -> None:
    result = run_driver(tmp_path)
    assert result["action_is_function"]
    assert result.get("error") is None, result["error"]
    before = result["before"]
    assert before["position"] == 2 * SR and before["start"] == SR // 2 and before["length"] == SR * 3 // 2
    assert before["channels"] == 2

    # The original region and its track are unchanged.
    assert result["after"] == before
    assert result["tracks"]["Mix"] == [before]

    # One new stereo track per stem, its region where the original is.
    name = before["name"]
    assert result["added"] == {"vocals": f"{name} - vocals", "accompaniment": f"{name} - accompaniment"}
    assert set(result["tracks"]) == {"Mix", f"{name} - vocals", f"{name} - accompaniment"}
    for stem in ("vocals", "accompaniment"):
        (placed,) = result["tracks"][f"{name} - {stem}"]
        assert {k: placed[k] for k in ("position", "length", "start", "channels")} == {
            k: before[k] for k in ("position", "length", "start", "channels")
        }

    # The stems, written where the adapter looks for them, sum to the
    # region's audio, channel by channel.
    inputs = result["inputs"]
    assert isinstance(inputs, list) and len(inputs) == 2
    begin, end = before["start"], before["start"] + before["length"]
    for channel, path in enumerate(inputs, 1):
        source, rate = sf.read(path, dtype="float32", always_2d=True)
        assert rate == SR and source.shape[1] == 1 and source.shape[0] >= end
        # The first run's folder, one folder per channel file.
        stem_dir = tmp_path / "session" / "acapella" / "1" / str(channel) / Path(path).stem
        vocals, _ = sf.read(stem_dir / "vocals.wav", dtype="float32", always_2d=True)
        accompaniment, _ = sf.read(stem_dir / "accompaniment.wav", dtype="float32", always_2d=True)
        assert vocals.shape == accompaniment.shape == source.shape
        region_audio = source[begin:end]
        assert np.abs(region_audio).max() > 0.01  # the backend really recorded noise
        np.testing.assert_allclose(vocals[begin:end] + accompaniment[begin:end], region_audio, atol=1e-3)
