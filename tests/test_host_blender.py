"""The Blender VSE add-on, run for real in ``blender -b`` with the real acapella command."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import acapella_command, acapella_executable

ADDON = Path(__file__).resolve().parents[1] / "host_adapters" / "blender" / "acapella_vse.py"
SR = 44100
FPS = 25

DRIVER = r'''
import importlib.util, json, sys
import bpy

addon_path, wav, blend, command = sys.argv[sys.argv.index("--") + 1:]
spec = importlib.util.spec_from_file_location("acapella_vse", addon_path)
addon = importlib.util.module_from_spec(spec)
sys.modules["acapella_vse"] = addon
spec.loader.exec_module(addon)
addon.register()

bpy.ops.wm.save_as_mainfile(filepath=blend)
scene = bpy.context.scene
scene.render.fps = %(fps)d
editor = scene.sequence_editor_create()
strip = editor.sequences.new_sound("Lead Take", wav, 1, 10)
strip.frame_final_start = 20
strip.frame_final_end = 40
strip.volume = 0.8
editor.active_strip = strip
# Something already on channel 2 over the strip: the stems must go around it.
blocker = editor.sequences.new_effect("Blocker", "COLOR", 2, frame_start=15, frame_end=45)

errors = {}
try:
    bpy.ops.sequencer.acapella_separate(acapella_command="/nonexistent/acapella")
except RuntimeError as exc:
    errors["bad_command"] = str(exc)
try:
    bpy.ops.sequencer.acapella_separate(stems="vocals,drums", acapella_command=command)
except RuntimeError as exc:
    errors["bad_stem"] = str(exc)
count_after_errors = len(editor.sequences_all)

result = bpy.ops.sequencer.acapella_separate(acapella_command=command)
strips = [
    {
        "name": s.name,
        "type": s.type,
        "channel": s.channel,
        "frame_start": s.frame_start,
        "frame_final_start": s.frame_final_start,
        "frame_final_end": s.frame_final_end,
        "volume": getattr(s, "volume", None),
        "filepath": bpy.path.abspath(s.sound.filepath) if s.type == "SOUND" else None,
    }
    for s in editor.sequences_all
]
print("ACAPELLA_JSON " + json.dumps(
    {"result": sorted(result), "errors": errors, "count_after_errors": count_after_errors, "strips": strips}
))
''' % {"fps": FPS}


def load_addon():
    spec = importlib.util.spec_from_file_location("acapella_vse_plain", ADDON)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module




def spaced_command(tmp_path: Path) -> str:
    """The acapella command at a full path with a space, as the README tells users to set it."""
    (real,) = acapella_command() if len(acapella_command()) == 1 else pytest.skip("no acapella console script")
    folder = tmp_path / "my venv" / "bin"
    folder.mkdir(parents=True)
    (folder / "acapella").symlink_to(real)
    return str(folder / "acapella")


def make_executable(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_command_setting_is_a_path_first(tmp_path: Path) -> None:
    addon = load_addon()
    spaced = make_executable(tmp_path / "Application Support" / "bin" / "acapella")
    assert addon.resolve_command(spaced) == [spaced]
    assert addon.resolve_command(f"  {spaced}\t") == [spaced]
    # A backslash is part of a file name on POSIX (and a separator on Windows); splitting ate it.
    backslashed = make_executable(tmp_path / "C:\\venv\\acapella.exe")
    assert addon.resolve_command(backslashed) == [backslashed]
    # Not one file: a command line, as before.
    assert addon.resolve_command(f"{shlex.quote(spaced)} --threads 1") == [spaced, "--threads", "1"]
    with pytest.raises(addon.AcapellaError) as caught:
        addon.resolve_command(str(tmp_path / "no such" / "acapella"))
    assert str(caught.value) == (
        f"acapella command {str(tmp_path / 'no')!r} (from {str(tmp_path / 'no such' / 'acapella')!r}) "
        "is not an executable file; fix it in the add-on preferences"
    )


def test_each_run_gets_a_folder_and_strip_names_of_its_own(tmp_path: Path) -> None:
    addon = load_addon()
    parent = tmp_path / "stems" / "mix.wav"
    assert addon.new_run_folder(str(parent), []) == str(parent / "1")
    # 2 is played by a strip although its folder is gone (deleted by hand, or a cleared temp folder).
    in_use = [str(parent / "2" / "mix" / "vocals.wav")]
    assert addon.new_run_folder(str(parent), in_use) == str(parent / "3")
    assert sorted(p.name for p in parent.iterdir()) == ["1", "3"]
    (tmp_path / "file").write_text("")
    with pytest.raises(addon.AcapellaError, match=r"^cannot create the stem folder .*file"):
        addon.new_run_folder(str(tmp_path / "file" / "x"), [])

    taken = {"mix.wav", "mix.wav - vocals", "mix.wav - vocals.001"}
    assert addon.strip_name("mix.wav", "vocals", taken) == "mix.wav - vocals.002"
    assert addon.strip_name("mix.wav", "accompaniment", taken) == "mix.wav - accompaniment"
    # Cut to Blender's 61 bytes on a character boundary, keeping the stem and the suffix.
    assert addon.strip_name("é" * 40, "accompaniment", set()) == "é" * 22 + " - accompaniment"
    assert addon.strip_name("é" * 40, "accompaniment", {"é" * 22 + " - accompaniment"}) == (
        "é" * 20 + " - accompaniment.001"
    )


def test_command_line_and_helpers() -> None:
    addon = load_addon()
    argv = addon.build_command(["acapella"], "/music/My Song.flac", "/out dir", ["vocals"], "small")
    assert argv == [
        "acapella", "separate", "/music/My Song.flac", "-o", "/out dir",
        "--stems", "vocals", "--format", "wav", "--model", "small", "--quiet", "--json",
    ]
    assert addon.free_channels([(2, 0, 100), (4, 50, 60)], 10, 20, 1, 2) == [3, 4]
    with pytest.raises(addon.AcapellaError, match="unknown stem 'drums'"):
        addon.parse_stems("vocals,drums")


def test_stem_paths_come_from_the_json_record(tmp_path: Path) -> None:
    addon = load_addon()
    record = {"input": "/m/a.wav", "status": "done", "reason": None,
              "stems": {"vocals": "/out/1/a/vocals.wav"}, "warnings": []}
    say = ["sh", "-c", f"echo 'acapella: warning: something' >&2; echo '{json.dumps(record)}'"]
    assert addon.run_separation(say, 30) == {"vocals": "/out/1/a/vocals.wav"}
    failed = {**record, "status": "failed", "reason": "cannot read /m/a.wav: damaged", "stems": {}}
    with pytest.raises(addon.AcapellaError, match="failed: cannot read /m/a.wav: damaged"):
        addon.run_separation(["sh", "-c", f"echo '{json.dumps(failed)}'; exit 1"], 30)
    with pytest.raises(addon.AcapellaError, match="failed: acapella: bad stem"):
        addon.run_separation(["sh", "-c", "echo 'acapella: bad stem' >&2; exit 2"], 30)
    # The real command, as the operator runs it.
    song = tmp_path / "take one.wav"
    sf.write(song, np.zeros((4410, 2), np.float32), SR, subtype="FLOAT")
    paths = addon.run_separation(addon.build_command(acapella_command(), str(song), str(tmp_path / "out"),
                                                     ["vocals"]), 300)
    assert paths == {"vocals": str(tmp_path / "out" / "take one" / "vocals.wav")}
    assert sf.info(paths["vocals"]).frames == 4410


@pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not installed (Debian: apt-get install -y blender)")
def test_blender_operator_adds_aligned_stem_strips(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    t = np.arange(2 * SR) / SR
    mix = np.stack([np.sin(2 * np.pi * 330 * t), np.sin(2 * np.pi * 220 * t)], 1) * 0.2
    mix = (mix + rng.standard_normal(mix.shape) * 0.01).astype(np.float32)
    wav = tmp_path / "take one.wav"
    sf.write(wav, mix, SR, subtype="FLOAT")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    blend = tmp_path / "project.blend"

    proc = subprocess.run(
        ["blender", "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1",
         "--python", str(driver), "--", str(ADDON), str(wav), str(blend), spaced_command(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("ACAPELLA_JSON ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1].split(" ", 1)[1])

    assert "not an executable file" in report["errors"]["bad_command"]
    assert "unknown stem 'drums'" in report["errors"]["bad_stem"]
    assert report["count_after_errors"] == 2
    assert report["result"] == ["FINISHED"]

    strips = {s["name"]: s for s in report["strips"]}
    original = strips["Lead Take"]
    assert (original["channel"], original["frame_final_start"], original["frame_final_end"]) == (1, 20, 40)
    vocals, accompaniment = strips["Lead Take - vocals"], strips["Lead Take - accompaniment"]
    assert [vocals["channel"], accompaniment["channel"]] == [3, 4]
    for stem in (vocals, accompaniment):
        assert stem["type"] == "SOUND"
        for key in ("frame_start", "frame_final_start", "frame_final_end", "volume"):
            assert stem[key] == pytest.approx(original[key]), key
        assert Path(stem["filepath"]).parent == tmp_path / "acapella_stems" / "Lead_Take" / "1" / "take one"

    v, rate = sf.read(vocals["filepath"], dtype="float32", always_2d=True)
    a, _ = sf.read(accompaniment["filepath"], dtype="float32", always_2d=True)
    assert rate == SR and v.shape == a.shape == mix.shape
    np.testing.assert_allclose(v + a, mix, atol=1e-3)


# Separates the strip of one sound file; with a replacement, copies it over
# the sound file (the source changed) and separates the same strip again.
RERUN_DRIVER = r'''
import importlib.util, json, shutil, sys
import bpy

addon_path, command, blend, wav, replacement = sys.argv[sys.argv.index("--") + 1:]
spec = importlib.util.spec_from_file_location("acapella_vse", addon_path)
addon = importlib.util.module_from_spec(spec)
sys.modules["acapella_vse"] = addon
spec.loader.exec_module(addon)
addon.register()
if blend:
    bpy.ops.wm.save_as_mainfile(filepath=blend)
editor = bpy.context.scene.sequence_editor_create()
strip = editor.sequences.new_sound("mix.wav", wav, 1, 1)
results = []
for source in [None, replacement] if replacement else [None]:
    if source:
        shutil.copyfile(source, wav)
    editor.active_strip = strip
    results += sorted(bpy.ops.sequencer.acapella_separate(acapella_command=command))
strips = {s.name: bpy.path.abspath(s.sound.filepath) for s in editor.sequences_all if s.type == "SOUND"}
print("ACAPELLA_JSON " + json.dumps({"results": results, "strips": strips}))
'''


def make_song(path: Path, seed: int, freq: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    mix = np.stack([np.sin(2 * np.pi * freq * t), np.sin(2 * np.pi * freq * 1.5 * t)], 1) * 0.2
    mix = (mix + rng.standard_normal(mix.shape) * 0.05).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, mix, SR, subtype="FLOAT")
    return mix


def run_rerun_driver(tmp_path: Path, blend: str, wav: Path, replacement: str = "", env: dict | None = None) -> dict:
    driver = tmp_path / "rerun.py"
    driver.write_text(RERUN_DRIVER)
    proc = subprocess.run(
        ["blender", "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python", str(driver),
         "--", str(ADDON), acapella_executable(), blend, str(wav), replacement],
        capture_output=True, text=True, timeout=300, env=env,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("ACAPELLA_JSON ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1].split(" ", 1)[1])


@pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not installed (Debian: apt-get install -y blender)")
def test_running_again_keeps_the_first_stems(tmp_path: Path) -> None:
    first = make_song(tmp_path / "A" / "mix.wav", 1, 330)
    second = make_song(tmp_path / "changed.wav", 2, 440)
    report = run_rerun_driver(tmp_path, str(tmp_path / "project.blend"), tmp_path / "A" / "mix.wav",
                              str(tmp_path / "changed.wav"))
    assert report["results"] == ["FINISHED", "FINISHED"]
    strips = report["strips"]
    assert sorted(strips) == [
        "mix.wav", "mix.wav - accompaniment", "mix.wav - accompaniment.001",
        "mix.wav - vocals", "mix.wav - vocals.001",
    ]
    stems = tmp_path / "acapella_stems" / "mix.wav"
    assert Path(strips["mix.wav - vocals"]) == stems / "1" / "mix" / "vocals.wav"
    assert Path(strips["mix.wav - vocals.001"]) == stems / "2" / "mix" / "vocals.wav"
    # The first run's strips still play the first run's stems.
    for suffix, mix in (("", first), (".001", second)):
        v, _ = sf.read(strips[f"mix.wav - vocals{suffix}"], dtype="float32")
        a, _ = sf.read(strips[f"mix.wav - accompaniment{suffix}"], dtype="float32")
        np.testing.assert_allclose(v + a, mix, atol=1e-3)


@pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not installed (Debian: apt-get install -y blender)")
def test_unsaved_projects_with_same_named_sources_keep_their_stems(tmp_path: Path) -> None:
    temp = tmp_path / "system temp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    mixes = {"A": make_song(tmp_path / "A" / "mix.wav", 1, 330), "B": make_song(tmp_path / "B" / "mix.wav", 2, 440)}
    strips = {name: run_rerun_driver(tmp_path, "", tmp_path / name / "mix.wav", env=env)["strips"] for name in mixes}
    for name, mix in mixes.items():
        assert Path(strips[name]["mix.wav - vocals"]).is_relative_to(temp / "acapella_stems" / "mix.wav")
        v, _ = sf.read(strips[name]["mix.wav - vocals"], dtype="float32")
        a, _ = sf.read(strips[name]["mix.wav - accompaniment"], dtype="float32")
        np.testing.assert_allclose(v + a, mix, atol=1e-3)
    assert strips["A"]["mix.wav - vocals"] != strips["B"]["mix.wav - vocals"]
