"""The REAPER and Ardour Lua scripts, without REAPER or Ardour.

This checks the scripts' own command-building helpers, run by a plain Lua
interpreter, and the command lines they build, run for real against the
installed ``acapella`` command, writing the stems where the scripts will look
for them. REAPER does not run here; the Ardour script is also run inside
Ardour's headless Lua tool by test_host_ardour.py.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import LUA_JSON, acapella_executable

ROOT = Path(__file__).resolve().parents[1]
REAPER = ROOT / "host_adapters" / "reaper" / "acapella_separate_item.lua"
ARDOUR = ROOT / "host_adapters" / "ardour" / "acapella_separate_region.lua"
LUA = next((shutil.which(n) for n in ("lua5.4", "lua5.3", "lua") if shutil.which(n)), None)

pytestmark = pytest.mark.skipif(LUA is None, reason="no Lua interpreter (Debian: apt-get install -y lua5.4)")



def lua(script: Path, body: str) -> object:
    """Load ``script`` as module M in a plain Lua and return ``body``'s value as JSON."""
    code = LUA_JSON + f"local M = dofile({json.dumps(str(script))})\nprint(lit((function() {body} end)()))\n"
    result = subprocess.run([LUA, "-"], input=code, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def lua_str(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for these inputs




def make_song(path: Path, channels: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    t = np.arange(SR) / SR
    tones = [np.sin(2 * np.pi * f * t) for f in (262, 330)][:channels]
    audio = (np.stack(tones, 1) * 0.2 + rng.standard_normal((t.size, channels)) * 0.01).astype(np.float32)
    sf.write(path, audio, SR, subtype="FLOAT")
    return audio


SR = 44100
AWKWARD = "/music/it's a \"song\" $HOME.wav"


def test_reaper_command_line_quotes_awkward_paths() -> None:
    command = lua(
        REAPER,
        f'return M.build_command{{acapella="/opt/ac apella/bin/acapella", input={lua_str(AWKWARD)}, '
        'out_dir="/proj dir/acapella", stems={"vocals","accompaniment"}, model="small"}',
    )
    assert shlex.split(command) == [
        "/opt/ac apella/bin/acapella", "separate", AWKWARD, "-o", "/proj dir/acapella",
        "--stems", "vocals,accompaniment", "--format", "wav", "--model", "small", "--force", "--quiet",
    ]
    windows = lua(
        REAPER,
        'return M.build_command{acapella="C:\\\\acapella.exe", input="C:\\\\My \\"x\\".wav", '
        'out_dir="C:\\\\out", stems={"vocals"}, windows=true}',
    )
    assert windows == (
        '"C:\\acapella.exe" separate "C:\\My ""x"".wav" -o "C:\\out" '
        '--stems "vocals" --format wav --force --quiet'
    )


def test_reaper_paths_and_exec_results() -> None:
    paths = lua(REAPER, 'return M.stem_paths("/p/acapella", "/m/Take 1.v2.wav", {"vocals","accompaniment"})')
    assert paths == {
        "vocals": "/p/acapella/Take 1.v2/vocals.wav",
        "accompaniment": "/p/acapella/Take 1.v2/accompaniment.wav",
    }
    assert lua(REAPER, 'return M.stem_paths("C:\\\\p\\\\", "C:\\\\m\\\\a.wav", {"vocals"}, true)') == {
        "vocals": "C:\\p\\a\\vocals.wav"
    }
    assert lua(REAPER, 'return table.pack(M.parse_exec_result("0\\nall good\\n"))') == [True]
    assert lua(REAPER, 'return table.pack(M.parse_exec_result("2\\nusage\\nerror: bad stem\\n"))') == [
        None, "acapella separate failed: error: bad stem",
    ]
    assert lua(REAPER, "return table.pack(M.parse_exec_result(nil))") == [None, "could not start the acapella command"]
    assert lua(REAPER, 'return {M.is_windows("Win64"), M.is_windows("Linux"), M.is_windows("OSX64")}') == [
        True, False, False,
    ]


def test_reaper_command_runs_the_real_cli(tmp_path: Path) -> None:
    song_dir = tmp_path / "it's a song"
    song_dir.mkdir()
    song = song_dir / "Take 1.wav"
    audio = make_song(song, 2)
    out_dir = tmp_path / "project dir" / "acapella"
    out_dir.mkdir(parents=True)
    result = lua(
        REAPER,
        f"local opts = {{acapella={lua_str(acapella_executable())}, input={lua_str(str(song))}, "
        f'out_dir={lua_str(str(out_dir))}, stems={{"vocals","accompaniment"}}}}\n'
        # The same wrapping M.main() does before ExecProcess on Linux/macOS.
        'return {command="/bin/sh -c " .. M.quote(M.build_command(opts), false), '
        "paths=M.stem_paths(opts.out_dir, opts.input, opts.stems)}",
    )
    run = subprocess.run(result["command"], shell=True, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    vocals, rate = sf.read(result["paths"]["vocals"], dtype="float32", always_2d=True)
    accompaniment, _ = sf.read(result["paths"]["accompaniment"], dtype="float32", always_2d=True)
    assert rate == SR and vocals.shape == accompaniment.shape == audio.shape
    np.testing.assert_allclose(vocals + accompaniment, audio, atol=1e-3)


def test_ardour_command_line_and_paths() -> None:
    command = lua(
        ARDOUR,
        f'return M.build_command("acapella", {{{lua_str(AWKWARD)}, "/s/take%R.wav"}}, "/sess/acapella", '
        '{"vocals","accompaniment"}, "default")',
    )
    assert shlex.split(command) == [
        "acapella", "separate", AWKWARD, "/s/take%R.wav", "-o", "/sess/acapella",
        "--stems", "vocals,accompaniment", "--format", "wav", "--force", "--quiet",
    ]
    paths = lua(ARDOUR, 'return M.stem_paths("/o", {"/s/take%L.wav", "/s/take%R.wav"}, {"vocals"})')
    assert paths == {"vocals": ["/o/take%L/vocals.wav", "/o/take%R/vocals.wav"]}
    failed = lua(ARDOUR, "return table.pack(M.run(\"sh -c 'echo working; echo oh no: broken >&2; exit 3'\"))")
    assert failed == [None, "acapella separate failed: oh no: broken"]


def test_ardour_command_runs_the_real_cli(tmp_path: Path) -> None:
    # Ardour stores a stereo region as one mono file per channel.
    left, right = tmp_path / "take%L.wav", tmp_path / "take%R.wav"
    left_audio = make_song(left, 1)
    right_audio = make_song(right, 1) * 0.5
    sf.write(right, right_audio, SR, subtype="FLOAT")
    out_dir = tmp_path / "session" / "acapella"
    result = lua(
        ARDOUR,
        f"local inputs = {{{lua_str(str(left))}, {lua_str(str(right))}}}\n"
        f"local out = {lua_str(str(out_dir))}\n"
        f'local ok, err = M.run(M.build_command({lua_str(acapella_executable())}, inputs, out, '
        '{"vocals","accompaniment"}, "default"))\n'
        'return {ok=ok, err=err, paths=M.stem_paths(out, inputs, {"vocals","accompaniment"})}',
    )
    assert result.get("ok") is True, result.get("err")
    for channel, original in enumerate((left_audio, right_audio)):
        vocals, rate = sf.read(result["paths"]["vocals"][channel], dtype="float32", always_2d=True)
        accompaniment, _ = sf.read(result["paths"]["accompaniment"][channel], dtype="float32", always_2d=True)
        assert rate == SR and vocals.shape == accompaniment.shape == original.shape
        np.testing.assert_allclose(vocals + accompaniment, original, atol=1e-3)
