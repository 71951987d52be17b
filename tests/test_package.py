import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """The sdist, and the wheel built from it (as pip builds one from a source release)."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (sdist,) = out.glob("acapella-*.tar.gz")
    (wheel,) = out.glob("acapella-*.whl")
    return sdist, wheel


def test_wheel_holds_the_package_and_the_weights(dists):
    _, wheel = dists
    names = zipfile.ZipFile(wheel).namelist()
    assert "acapella/model/default.onnx" in names
    assert "acapella/model/acapellabot.onnx" in names
    assert "acapella/model/models.json" in names
    assert "acapella/model/MODEL_CARD.md" in names
    assert "acapella/separator.py" in names and "acapella/host_adapters/__init__.py" in names
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"acapella"}
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert b"acapella = acapella.cli:main" in zipfile.ZipFile(wheel).read(entry[0])


# ---- licences: the code's and the weights' ----------------------------------------------------

def test_sdist_and_wheel_carry_both_licences(dists):
    sdist, wheel = dists
    members = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {"LICENSE", "model/WEIGHTS-LICENSE.md", "model/MODEL_CARD.md"} <= members
    z = zipfile.ZipFile(wheel)
    names = z.namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.endswith(".dist-info/licenses/model/WEIGHTS-LICENSE.md") for n in names)
    assert "acapella/model/WEIGHTS-LICENSE.md" in names
    assert b"MIT License" in z.read(next(n for n in names if n.endswith("licenses/LICENSE")))
    (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    head = z.read(meta).decode().split("\n\n", 1)[0].splitlines()
    # The code and the weights differ, and the metadata says so.
    assert "License-Expression: MIT AND LicenseRef-acapella-weights" in head
    assert "research and non-commercial use only" in next(l for l in head if l.startswith("Summary:"))


def test_models_listing_states_the_weights_terms():
    from acapella.onnx_model import bundled, catalogue

    proc = subprocess.run([sys.executable, "-m", "acapella.cli", "models"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith("Weights of ")]
    for name in bundled():
        (line,) = [l for l in lines if name in l.split(":", 1)[0].removeprefix("Weights of ").split(", ")]
        assert catalogue()[name]["terms"] in line and "the code is MIT" in line
        assert "non-commercial" in catalogue()[name]["terms"]



def test_card_and_readme_quote_the_recorded_figures():
    # models.json is where quality.py --record writes; the card and the README must say the same.
    import json

    card = (ROOT / "model" / "MODEL_CARD.md").read_text()
    readme = (ROOT / "README.md").read_text()
    recorded = json.loads((ROOT / "model" / "models.json").read_text())
    for name, entry in recorded.items():
        for figures in entry["quality"].values():
            pair = f"{figures['vocals_sdr_v4']:.2f} / {figures['accompaniment_sdr_v4']:.2f}"
            row = next(l for l in card.splitlines() if l.startswith(f"| `{name}`"))
            assert pair in row, (name, pair, row)
        musdb = entry["quality"]["musdb-valid"]
        assert f"{musdb['vocals_sdr_v4']:.2f} / {musdb['accompaniment_sdr_v4']:.2f} dB" in readme, name
    assert card.splitlines()[2].startswith("**Terms of the weights: research and non-commercial use only.**")


def test_runtime_never_imports_torch():
    code = ("import sys, numpy as np, acapella, acapella.cli\n"
            "from acapella import Separator\n"
            "Separator().separate(np.zeros((2, 1000), np.float32), 44100)\n"
            "assert 'torch' not in sys.modules, 'torch imported at run time'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_docstring_examples():
    import doctest

    import acapella.board
    import acapella.effects
    import acapella.panning
    import acapella.separator
    import acapella.transforms

    for module in (acapella.effects, acapella.board, acapella.separator, acapella.panning, acapella.transforms):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__
