"""The Blender VSE add-on, run for real in ``blender -b`` with the real acapella command."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import acapella_command

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




def test_command_and_paths_match_the_cli_layout() -> None:
    addon = load_addon()
    argv = addon.build_command(["acapella"], "/music/My Song.flac", "/out dir", ["vocals"], "small")
    assert argv == [
        "acapella", "separate", "/music/My Song.flac", "-o", "/out dir",
        "--stems", "vocals", "--format", "wav", "--model", "small", "--force", "--quiet",
    ]
    assert addon.stem_paths("/out dir", "/music/My Song.flac", ["vocals", "accompaniment"]) == {
        "vocals": "/out dir/My Song/vocals.wav",
        "accompaniment": "/out dir/My Song/accompaniment.wav",
    }
    assert addon.free_channels([(2, 0, 100), (4, 50, 60)], 10, 20, 1, 2) == [3, 4]
    with pytest.raises(addon.AcapellaError, match="unknown stem 'drums'"):
        addon.parse_stems("vocals,drums")


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
         "--python", str(driver), "--", str(ADDON), str(wav), str(blend), shlex.join(acapella_command())],
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
        assert Path(stem["filepath"]).parent == tmp_path / "acapella_stems" / "Lead_Take" / "take one"

    v, rate = sf.read(vocals["filepath"], dtype="float32", always_2d=True)
    a, _ = sf.read(accompaniment["filepath"], dtype="float32", always_2d=True)
    assert rate == SR and v.shape == a.shape == mix.shape
    np.testing.assert_allclose(v + a, mix, atol=1e-3)
