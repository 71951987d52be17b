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
        "--stems", "vocals,accompaniment", "--format", "wav", "--model", "small", "--quiet", "--json",
    ]
    windows = lua(
        REAPER,
        'return M.build_command{acapella="C:\\\\acapella.exe", input="C:\\\\My \\"x\\".wav", '
        'out_dir="C:\\\\out", stems={"vocals"}, windows=true}',
    )
    assert windows == (
        '"C:\\acapella.exe" separate "C:\\My ""x"".wav" -o "C:\\out" '
        '--stems "vocals" --format wav --quiet --json'
    )


def test_reaper_reads_the_json_record_and_exec_results() -> None:
    record = 'acapella: warning: x\\n{\\"input\\": \\"/m/a.wav\\", \\"status\\": \\"done\\", \\"reason\\": null, ' \
             '\\"stems\\": {\\"vocals\\": \\"/p/acapella/1/caf\\\\u00e9 \\\\\\"x\\\\\\"/vocals.wav\\"}}\\n'
    got = lua(REAPER, f'return M.parse_exec_result("0\\n{record}").stems')
    assert got == {"vocals": '/p/acapella/1/café "x"/vocals.wav'}
    assert lua(REAPER, 'return table.pack(M.parse_exec_result("0\\nall good\\n"))') == [
        None, "acapella separate failed: all good",
    ]
    assert lua(REAPER, 'return table.pack(M.parse_exec_result("2\\nusage\\nerror: bad stem\\n"))') == [
        None, "acapella separate failed: error: bad stem",
    ]
    failed = '1\\n{\\"status\\": \\"failed\\", \\"reason\\": \\"cannot read /m/a.wav\\", \\"stems\\": {}}\\n'
    assert lua(REAPER, f'return table.pack(M.parse_exec_result("{failed}"))') == [
        None, "acapella separate failed: cannot read /m/a.wav",
    ]
    # A new numbered folder per run, above anything already in the project's acapella folder.
    assert lua(REAPER, 'return M.run_dir("/p/acapella", {}, false)') == "/p/acapella/1"
    assert lua(REAPER, 'return M.run_dir("/p/acapella", {"1", "7", "notes.txt", "12b"}, false)') == "/p/acapella/8"
    assert lua(REAPER, 'return M.run_dir("C:\\\\p", {"2"}, true)') == "C:\\p\\3"
    assert lua(REAPER, "return table.pack(M.parse_exec_result(nil))") == [None, "could not start the acapella command"]
    assert lua(REAPER, 'return {M.is_windows("Win64"), M.is_windows("Linux"), M.is_windows("OSX64")}') == [
        True, False, False,
    ]


def test_reaper_runs_never_overwrite_earlier_stems(tmp_path: Path) -> None:
    # Items from A/mix.wav and B/mix.wav, separated one after the other: the
    # second run must not replace the stems the first run's tracks play.
    songs = {}
    for name, channels in (("A", 2), ("B", 1)):
        folder = tmp_path / "it's a song" / name
        folder.mkdir(parents=True)
        songs[name] = (folder / "mix.wav", make_song(folder / "mix.wav", channels))
    out_dir = tmp_path / "project dir" / "acapella"
    out_dir.mkdir(parents=True)
    paths = {}
    for name, (song, audio) in songs.items():
        existing = "{" + ",".join(lua_str(p.name) for p in out_dir.iterdir()) + "}"
        result = lua(
            REAPER,
            f"local run = M.run_dir({lua_str(str(out_dir))}, {existing}, false)\n"
            f"local opts = {{acapella={lua_str(acapella_executable())}, input={lua_str(str(song))}, "
            'out_dir=run, stems={"vocals","accompaniment"}}\n'
            # The same wrapping M.main() does before ExecProcess on Linux/macOS.
            'return {run=run, command="/bin/sh -c " .. M.quote(M.build_command(opts), false)}',
        )
        Path(result["run"]).mkdir()  # M.main(): RecursiveCreateDirectory
        run = subprocess.run(result["command"], shell=True, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        # What M.main() does with ExecProcess's answer: the stems' paths from the record.
        reply = f"{run.returncode}\n{run.stdout}{run.stderr}"
        paths[name] = lua(REAPER, f"return M.parse_exec_result({lua_str(reply)}).stems")
    assert Path(paths["A"]["vocals"]) == out_dir / "1" / "mix" / "vocals.wav"
    assert Path(paths["B"]["vocals"]) == out_dir / "2" / "mix" / "vocals.wav"
    for name, (_, audio) in songs.items():
        vocals, rate = sf.read(paths[name]["vocals"], dtype="float32", always_2d=True)
        accompaniment, _ = sf.read(paths[name]["accompaniment"], dtype="float32", always_2d=True)
        assert rate == SR and vocals.shape == accompaniment.shape == audio.shape
        np.testing.assert_allclose(vocals + accompaniment, audio, atol=1e-3)


def test_ardour_command_line_and_failures() -> None:
    command = lua(
        ARDOUR,
        f'return M.build_command("acapella", {lua_str(AWKWARD)}, "/sess/acapella/1/1", '
        '{"vocals","accompaniment"}, "default")',
    )
    assert shlex.split(command) == [
        "acapella", "separate", AWKWARD, "-o", "/sess/acapella/1/1",
        "--stems", "vocals,accompaniment", "--format", "wav", "--quiet", "--json",
    ]
    failed = lua(ARDOUR, "return table.pack(M.run(\"sh -c 'echo working; echo oh no: broken >&2; exit 3'\"))")
    assert failed == [None, "acapella separate failed: oh no: broken"]


def test_ardour_command_runs_the_real_cli(tmp_path: Path) -> None:
    # Ardour stores a stereo region as one mono file per channel; embedded
    # (not copied) files of one region may share a name, even up to case,
    # which one CLI call would write to mix/ and MIX-2/. Odd names check that
    # the script knows the folder the CLI names after each file.
    inputs = [tmp_path / "A" / "mix.wav", tmp_path / "B" / "MIX.wav", tmp_path / "C" / "...wav",
              tmp_path / "D" / "take.1.wav"]
    audio = []
    for n, path in enumerate(inputs):
        path.parent.mkdir()
        audio.append(make_song(tmp_path / "tone.wav", 1) * (n + 1) / 4)
        sf.write(path, audio[-1], SR, format="WAV", subtype="FLOAT")
    out_dir = tmp_path / "session" / "acapella"
    call = (
        f"local inputs = {{{', '.join(lua_str(str(p)) for p in inputs)}}}\n"
        f"local opts = {{acapella={lua_str(acapella_executable())}, stems={{\"vocals\",\"accompaniment\"}}}}\n"
        f"return table.pack(M.separate_inputs({lua_str(str(out_dir))}, inputs, opts))"
    )
    first = lua(ARDOUR, call)
    assert len(first) == 1, first
    first_paths = first[0]
    assert [Path(p).relative_to(out_dir) for p in first_paths["vocals"]] == [
        Path("1/1/mix/vocals.wav"), Path("1/2/MIX/vocals.wav"), Path("1/3/___wav/vocals.wav"),
        Path("1/4/take.1/vocals.wav"),
    ]
    for channel, original in enumerate(audio):
        vocals, rate = sf.read(first_paths["vocals"][channel], dtype="float32", always_2d=True)
        accompaniment, _ = sf.read(first_paths["accompaniment"][channel], dtype="float32", always_2d=True)
        assert rate == SR and vocals.shape == accompaniment.shape == original.shape
        np.testing.assert_allclose(vocals + accompaniment, original, atol=1e-3)

    # Running again on changed audio writes a new run folder and leaves the
    # files the first run's tracks play alone.
    before = {p: Path(p).read_bytes() for stem in first_paths.values() for p in stem}
    sf.write(inputs[0], audio[0][::-1].copy(), SR, subtype="FLOAT")
    second = lua(ARDOUR, call)
    assert len(second) == 1, second
    assert Path(second[0]["vocals"][0]) == out_dir / "2" / "1" / "mix" / "vocals.wav"
    assert {p: Path(p).read_bytes() for p in before} == before
