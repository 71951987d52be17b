import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_the_package_and_the_weights(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("acapella-*.whl")
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
