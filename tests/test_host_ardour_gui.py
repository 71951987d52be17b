"""The Ardour adapter's editor action, run by the real Ardour 7.3 GUI under Xvfb.

``test_host_ardour.py`` runs the adapter headless, with a stand-in for the
editor's import. This test runs the whole action in the GUI:

1. ``ardour7-lua`` makes a session on the Dummy backend and records a stereo
   region of pink noise, trimmed and moved to 2 s, as in the headless test.
2. Ardour (the GUI) opens it under Xvfb. A throwaway user config directory
   makes it start the Dummy backend without asking (``hide-dummy-backend``
   off, a saved Audio/MIDI setup, ``ARDOUR_TRY_AUTOSTART_ENGINE``) and holds
   an editor hook (``ui_scripts``, the file where Ardour keeps its Lua hooks)
   that runs once on the one-second Lua timer: it loads the adapter the way
   Ardour loads an action (only ``factory``, through ``string.dump``), selects
   the region in the editor (``Editor:set_selection``), runs the action, which
   calls the real ``Editor:do_import``, saves the session and quits.
3. ``ardour7-lua`` loads the saved session again; the test checks the two new
   tracks, their regions' placement and that their files hold the stems.

Only the error dialogs are replaced (a modal dialog would block the run); the
hook records their text instead and the test fails on any. Ardour 7.3 exits
with SIGSEGV while tearing down after the hook's Quit (the session was saved
before), so its exit status is not checked; the test kills it if it lingers.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import acapella_executable
from test_host_ardour import RECORD_REGION

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "host_adapters" / "ardour" / "acapella_separate_region.lua"
SR = 44100

ARDOUR_LUA = shutil.which("ardour7-lua")
ARDOUR = shutil.which("ardour7") or shutil.which("ardour")
XVFB = shutil.which("Xvfb")
pytestmark = pytest.mark.skipif(
    ARDOUR_LUA is None or ARDOUR is None or XVFB is None or not glob.glob("/usr/lib/ardour7/ardour-7.*"),
    reason="needs Ardour 7 (GUI and ardour7-lua) and Xvfb (Debian: apt-get install -y ardour xvfb)",
)

# ardour7-lua: a session with one stereo track and a recorded, trimmed, moved region.
MAKE_SESSION = r"""
local session_dir = arg[1]
local SR = 44100
""" + RECORD_REGION + r"""Session:save_state("", false, false, false, false, false)
close_session()
print("@@ made")
"""

# ardour7-lua: load the saved session and print its tracks, regions and files.
DESCRIBE_SESSION = r"""
local session_dir = arg[1]
AudioEngine:set_backend("None (Dummy)", "", "")
assert(load_session(session_dir, "session"), "could not load the session")
local function q(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end
local tracks = {}
for route in Session:get_routes():iter() do
  local t = route:to_track()
  if not t:isnil() then
    local regions = {}
    for r in t:playlist():region_list():iter() do
      local ar = r:to_audioregion()
      local files = {}
      for c = 0, ar:n_channels() - 1 do files[#files + 1] = q(ar:source(c):to_filesource():path()) end
      regions[#regions + 1] = string.format(
        '{"name":%s,"position":%d,"start":%d,"length":%d,"files":[%s]}', q(r:name()),
        r:position():samples(), r:start():samples(), r:length():samples(), table.concat(files, ","))
    end
    tracks[#tracks + 1] = q(route:name()) .. ":[" .. table.concat(regions, ",") .. "]"
  end
end
print("@@ {" .. table.concat(tracks, ",") .. "}")
close_session()
"""

# The editor hook's factory body (a Lua chunk returning the callback). Runs
# once, on the second tick of the one-second timer after the session loaded.
HOOK = r"""
local script, result_path = %(script)s, %(result)s
local ticks, done = 0, false
return function (signal, ref, ...)
  if signal ~= LuaSignal.LuaTimerS then return end
  if done then
    Editor:access_action ("Common", "Quit")
    return
  end
  ticks = ticks + 1
  if ticks < 2 then return end
  done = true
  local log = {}
  local ok, err = pcall (function ()
    -- Modal dialogs would block the run: keep their text instead.
    LuaDialog = { Message = function (title, text) log[#log + 1] = "dialog: " .. text
                                                   return { run = function () end } end,
                  MessageType = LuaDialog.MessageType, ButtonType = LuaDialog.ButtonType }
    ardour = function () end
    loadfile (script) ()
    local action = load (string.dump (factory, true), nil, nil, _ENV) (nil)
    factory = nil
    local sl = ArdourUI.SelectionList ()
    for route in Session:get_routes ():iter () do
      local t = route:to_track ()
      if not t:isnil () then
        for r in t:playlist ():region_list ():iter () do
          sl:push_back (Editor:regionview_from_region (r))
        end
      end
    end
    Editor:set_selection (sl, ArdourUI.SelectionOp.Set)
    log[#log + 1] = "selected: " .. Editor:get_selection ().regions:regionlist ():size ()
    action ()
    Session:save_state ("", false, false, false, false, false)
    log[#log + 1] = "saved"
  end)
  if not ok then log[#log + 1] = "error: " .. tostring (err) end
  local f = io.open (result_path .. ".part", "w")
  f:write (table.concat (log, "\n"), "\n")
  f:close ()
  os.rename (result_path .. ".part", result_path)
end
"""


def lua_string(text: str) -> str:
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\{ord(c):03d}" for c in text) + '"'


def write_user_config(config: Path, result: Path) -> None:
    """Ardour's user config directory: no first-run wizard, Dummy backend on
    Pink Noise started without asking, and the hook."""
    config.mkdir(parents=True, exist_ok=True)
    (config / ".a7").touch()  # "been here before": skips the first-run wizard
    (config / "config").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Ardour>\n'
        '  <Config><Option name="hide-dummy-backend" value="0"/></Config>\n'
        "  <Extra><AudioMIDISetup><EngineStates>\n"
        '    <State backend="None (Dummy)" driver="" device="Pink Noise" input-device="" output-device=""'
        ' sample-rate="44100" buffer-size="1024" n-periods="0" input-latency="0" output-latency="0"'
        ' input-channels="0" output-channels="0" lm-input="" lm-output="" active="1" use-buffered-io="0"'
        f' midi-option="No MIDI I/O" lru="{int(time.time())}"><MIDIDevices/></State>\n'
        "  </EngineStates></AudioMIDISetup></Extra>\n</Ardour>\n"
    )
    chunk = HOOK % {"script": lua_string(str(SCRIPT)), "result": lua_string(str(result))}
    # The hook as Ardour saves one: its restore code runs this and loads s["f"].
    state = 's = {} s["n"] = "acapella test" s["s"] = "" s["f"] = %s s["a"] = {}' % lua_string(chunk)
    payload = base64.b64encode(state.encode()).decode()
    (config / "ui_scripts").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<UIScripts><ActionHooks>'
        f'<LuaCallback lua="5.3" id="4242" name="acapella test" signals="{"1" * 64}">{payload}</LuaCallback>'
        "</ActionHooks></UIScripts>\n"
    )


def run(command: list[str], env: dict, cwd: Path, timeout: float) -> str:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=cwd, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{command[0]} did not finish in {timeout} s:\n{output[-3000:]}")
    return output


def lua_result(output: str) -> str:
    lines = [line[3:] for line in output.splitlines() if line.startswith("@@ ")]
    assert lines, f"ardour7-lua printed no result:\n{output[-3000:]}"
    return lines[-1]


def start_xvfb(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen([XVFB, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=tmp_path, start_new_session=True)
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + 15
    try:
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
    finally:
        os.close(read_fd)
    if not number.strip():
        os.killpg(xvfb.pid, signal.SIGKILL)
        xvfb.wait()
        pytest.skip("Xvfb did not start")
    return xvfb, ":" + number.decode().strip()


def test_editor_action_in_ardour_gui(tmp_path: Path) -> None:
    acapella = acapella_executable()
    session = tmp_path / "session"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    make = tmp_path / "make.lua"
    make.write_text(MAKE_SESSION)
    assert lua_result(run([ARDOUR_LUA, str(make), str(session)], env, tmp_path, 60)) == "made"
    before = json.loads(lua_result(run([ARDOUR_LUA, str(_write(tmp_path / "describe.lua", DESCRIBE_SESSION)),
                                        str(session)], env, tmp_path, 60)))
    ((original,),) = before.values()

    result = tmp_path / "hook-result.txt"
    write_user_config(tmp_path / "config" / "ardour7", result)
    xvfb, display = start_xvfb(tmp_path)
    gui_env = dict(env, DISPLAY=display, ARDOUR_TRY_AUTOSTART_ENGINE="1",
                   PATH=os.path.dirname(acapella) + os.pathsep + env.get("PATH", ""))
    log_path = tmp_path / "ardour.log"
    try:
        with open(log_path, "w") as log:
            gui = subprocess.Popen([ARDOUR, "-a", "-n", str(session / "session.ardour")], stdout=log,
                                   stderr=subprocess.STDOUT, env=gui_env, cwd=tmp_path, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while not result.exists() and gui.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if result.exists():  # the hook asks Ardour to quit on the next tick; any exit status
                try:
                    gui.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if gui.poll() is None:
                os.killpg(gui.pid, signal.SIGKILL)
                gui.wait()
    finally:
        os.killpg(xvfb.pid, signal.SIGKILL)
        xvfb.wait()
    assert result.exists(), "the hook did not run in Ardour:\n" + log_path.read_text()[-3000:]
    log_lines = result.read_text().splitlines()
    assert log_lines == ["selected: 1", "saved"], log_lines

    after = json.loads(lua_result(run([ARDOUR_LUA, str(tmp_path / "describe.lua"), str(session)],
                                      env, tmp_path, 60)))
    name = original["name"]
    assert set(after) == {"Mix", f"{name} - vocals", f"{name} - accompaniment"}
    assert after["Mix"] == [original]  # the original region is untouched
    for stem in ("vocals", "accompaniment"):
        (placed,) = after[f"{name} - {stem}"]
        for key in ("position", "start", "length"):
            assert placed[key] == original[key], (stem, key, placed, original)
        # Ardour copied the stem files into the session; channel by channel
        # they hold the stem written for that channel's file.
        assert len(placed["files"]) == len(original["files"]) == 2
        for channel, (imported, source) in enumerate(zip(placed["files"], original["files"]), 1):
            assert Path(imported).parent == session / "interchange" / "session" / "audiofiles"
            stem_file = session / "acapella" / "1" / str(channel) / Path(source).stem / f"{stem}.wav"
            got, rate = sf.read(imported, dtype="float32", always_2d=True)
            want, want_rate = sf.read(stem_file, dtype="float32", always_2d=True)
            assert rate == want_rate == SR and got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-4)
    vocals = sf.read(after[f"{name} - vocals"][0]["files"][0], dtype="float32")[0]
    accompaniment = sf.read(after[f"{name} - accompaniment"][0]["files"][0], dtype="float32")[0]
    region = sf.read(original["files"][0], dtype="float32")[0]
    begin, end = original["start"], original["start"] + original["length"]
    assert np.abs(region[begin:end]).max() > 0.01  # the backend really recorded noise
    np.testing.assert_allclose(vocals[begin:end] + accompaniment[begin:end], region[begin:end], atol=1e-3)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
