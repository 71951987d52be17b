"""The one default data root (acapella.model.paths), as training, the benchmarks and the tests find it."""
from pathlib import Path

import pytest

from acapella.model import paths
from acapella.model.paths import default_data_root


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(paths.ENV, raising=False)


# ---- $ACAPELLA_DATA ---------------------------------------------------------------------------

def test_the_environment_names_the_root_for_everyone(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.ENV, str(tmp_path / "elsewhere"))
    assert default_data_root() == tmp_path / "elsewhere"
    assert default_data_root(beside=tmp_path / "checkout") == tmp_path / "elsewhere"


def test_an_empty_variable_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.ENV, "")
    assert default_data_root(beside=tmp_path / "checkout") == tmp_path / "shared" / "data"


# ---- beside a checkout ------------------------------------------------------------------------

def test_a_scripts_checkout_gives_its_own_neighbour_even_before_it_exists(no_env, tmp_path):
    checkout = tmp_path / "repo"
    checkout.mkdir()
    assert default_data_root(beside=checkout) == tmp_path / "shared" / "data"
    assert not (tmp_path / "shared").exists()


def test_beside_is_resolved(no_env, tmp_path, monkeypatch):
    (tmp_path / "repo" / "benchmarks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "benchmarks")
    assert default_data_root(beside="..") == tmp_path / "shared" / "data"


def test_the_working_directory_comes_before_the_package(no_env, tmp_path, monkeypatch):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert default_data_root().resolve() == (tmp_path / "shared" / "data").resolve()


def test_without_any_data_the_answer_is_relative(no_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    package_checkout = Path(paths.__file__).resolve().parents[1]
    if (package_checkout.parent / "shared" / "data").is_dir():
        # An editable checkout with the data beside it: that is the answer.
        assert default_data_root() == package_checkout.parent / "shared" / "data"
    else:
        assert default_data_root() == Path("..") / "shared" / "data"


# ---- its users ---------------------------------------------------------------------------------

def test_quality_benchmark_reads_the_validation_set_from_the_one_root(monkeypatch, tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
    monkeypatch.setenv(paths.ENV, str(tmp_path / "data"))
    r = subprocess.run([sys.executable, str(script), "--set", "musdb-valid", "--mixture-baseline"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert f"reads {tmp_path / 'data'}" in last and "Traceback" not in r.stderr

