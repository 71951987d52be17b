"""The benchmark scripts' option checks, run as a user runs them, on tiny generated songs.

Each script runs from a copy of benchmarks/ beside a copy of model/models.json, so that
``quality.py --record`` (and a test of it that fails) can only write the copy, never the
repository's file; the copy's default data root is ``tmp_path/shared/data``.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")

from acapella.model.validation import VALIDATION_SETS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SR = 8000


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    """The copied benchmarks/ folder."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "benchmarks", root / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "model").mkdir()
    shutil.copy(REPO / "model" / "models.json", root / "model" / "models.json")
    return root / "benchmarks"


def song(folder: Path, name: str, seconds: float = 1.0, rate: int = SR, channels: int = 2,
         stems: tuple[str, ...] = ("vocals", "accompaniment")) -> Path:
    """A song folder of sines (never real audio): vocals at 440 Hz over accompaniment at 220 Hz."""
    d = folder / name
    d.mkdir(parents=True)
    t = np.arange(int(seconds * rate)) / rate
    for stem, freq, amp in (("vocals", 440, 0.5), ("accompaniment", 220, 0.25)):
        if stem in stems:
            x = np.repeat((amp * np.sin(2 * np.pi * freq * t))[:, None], channels, axis=1)
            sf.write(d / f"{stem}.wav", x.astype(np.float32), rate, subtype="FLOAT")
    return d


def run(script: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          cwd=script.parent, timeout=300)


def refused(r: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The one-line error of a run that stopped with ``code`` before doing any work."""
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    for w in words:
        assert w in last, last
    return last


@pytest.fixture
def ok_songs(tmp_path: Path) -> Path:
    folder = tmp_path / "ok"
    song(folder, "A")
    song(folder, "B")
    return folder


# ---- quality.py ----------------------------------------------------------------------------

def test_quality_unreadable_stem_is_one_line_before_any_song(bench, tmp_path):
    folder = tmp_path / "songs"
    song(folder, "A_ok")
    bad = song(folder, "B_bad", stems=("accompaniment",)) / "vocals.wav"
    bad.write_bytes(b"not audio at all" * 10)
    r = run(bench / "quality.py", folder, "--mixture-baseline")
    line = refused(r, 1, str(bad), "cannot read")
    assert line.startswith("quality.py: ")
    assert "A_ok" not in r.stdout  # every file is opened before the first song is separated


def test_quality_reports_a_song_folder_missing_a_stem(bench, tmp_path):
    folder = tmp_path / "songs"
    song(folder, "A_ok")
    song(folder, "B_novox", stems=("accompaniment",))
    (folder / "notes").mkdir()  # no stem at all: not a song, nothing to report
    r = run(bench / "quality.py", folder, "--mixture-baseline")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines() == [f"quality.py: skipping {folder / 'B_novox'}: it has no vocals.* file"]
    assert "median over 1 songs" in r.stdout


@pytest.mark.parametrize("args, words", [
    (["{missing}", "--set", "musdb-valid"], ["missing", "not a folder"]),
    (["{missing}"], ["missing", "not a folder"]),
    (["{ok}", "--songs", "A;Z", "--mixture-baseline"], ["'Z'"]),
    (["{ok}", "--oracle", "2048,0"], ["'2048,0'"]),
    (["{ok}", "--oracle=-2048,-512"], ["'-2048,-512'"]),
    (["{ok}", "--oracle", "--model", "nope"], ["--oracle", "'nope'"]),
    (["{ok}", "--against", "nope.onnx"], ["--against", "nope.onnx"]),
    (["{ok}", "--mixture-baseline", "--json", "{missing}/out.json"], ["--json", "out.json", "cannot be written"]),
    (["{ok}", "--mixture-baseline", "--json", "{ok}"], ["--json", "is a folder"]),
    (["{ok}", "--post", "temperature=-1"], ["temperature=-1", "above 0"]),
    (["{ok}", "--post", "temperature=0"], ["temperature=0"]),
    (["{ok}", "--post", "temperature=nan"], ["temperature=nan"]),
    (["{ok}", "--post", "temperature=inf"], ["temperature=inf"]),
    (["{ok}", "--post", "wiener=0"], ["wiener=0", "N >= 1"]),
    (["{ok}", "--post", "wiener=-2"], ["wiener=-2"]),
    (["{ok}", "--post", "wiener=1:-1"], ["wiener=1:-1", "K >= 0"]),
])
def test_quality_bad_options_stop_before_any_song(bench, tmp_path, ok_songs, args, words):
    args = [a.format(ok=ok_songs, missing=tmp_path / "missing") for a in args]
    r = run(bench / "quality.py", *args)
    line = refused(r, 2, *words)
    assert line.startswith("quality.py: error: ")
    assert r.stdout == ""  # nothing separated, no table started
    assert not (tmp_path / "missing").exists()


def mir1k_clips(folder: Path, n: int, extra: tuple[str, ...] = ()) -> None:
    """``n`` clips named like the held-out MIR-1K singers' (0.1 s of mono sines), plus ``extra``."""
    names = [f"{'abjones' if i % 2 else 'bobon'}_{i // 10}_{i % 10:02d}" for i in range(n)]
    for name in [*names, *extra, "Ani_1_01"]:  # a training singer's clip is not in the set
        song(folder, name, seconds=0.1, rate=16000, channels=1)


@pytest.mark.parametrize("clips, extra, model", [
    (93, (), "{bundled_path}"),    # a path, even to a bundled file: not a name models.json knows
    (1, (), "default"),            # one clip passing for the set
    (92, (), "default"),
    (93, ("abjones_9_99",), "default"),   # a foreign clip under the set's prefix
])
def test_record_refuses_all_but_a_bundled_model_on_the_whole_set(bench, tmp_path, clips, extra, model):
    from acapella.onnx_model import resolve

    card = bench.parent / "model" / "models.json"
    before = card.read_bytes()
    root = tmp_path / "shared" / "data"  # the copy's default data root
    mir1k_clips(root / VALIDATION_SETS["mir1k-valid"].folder, clips, extra)
    for where in ([], [root / "mir1k-train"]):
        r = run(bench / "quality.py", *where, "--set", "mir1k-valid", "--record",
                "--model", model.format(bundled_path=resolve("default")))
        refused(r, 2, "--record")
        assert r.stdout == ""
        assert card.read_bytes() == before


def test_record_refuses_musdb_valid_without_all_its_songs(bench, tmp_path):
    card = bench.parent / "model" / "models.json"
    before = card.read_bytes()
    folder = tmp_path / "musdb"
    for name in VALIDATION_SETS["musdb-valid"].songs[:-1]:
        song(folder, name, seconds=0.1)
    r = run(bench / "quality.py", folder, "--set", "musdb-valid", "--record")
    refused(r, 2, VALIDATION_SETS["musdb-valid"].songs[-1])
    assert card.read_bytes() == before


def test_record_writes_the_whole_set(bench, tmp_path):
    import json

    card = bench.parent / "model" / "models.json"
    folder = tmp_path / "musdb"
    for name in VALIDATION_SETS["musdb-valid"].songs:
        song(folder, name, seconds=0.5, rate=44100)
    r = run(bench / "quality.py", folder, "--set", "musdb-valid", "--record")
    assert r.returncode == 0, r.stderr
    entry = json.loads(card.read_text())["default"]["quality"]["musdb-valid"]
    assert entry["songs"] == 14
    assert "median over 14 songs" in r.stdout


# ---- speed.py ------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--runs", "0"], ["--runs", "'0'"]),
    (["--seconds", "0"], ["--seconds", "'0'"]),
    (["--seconds", "-3"], ["--seconds", "'-3'"]),
    (["--threads", "0"], ["--threads", "'0'"]),
    (["--rate", "0"], ["--rate", "'0'"]),
    (["--chunks", "abc"], ["--chunks", "'abc'"]),
    (["--chunks", "30,0"], ["--chunks", "'0'"]),
    (["--vocal-pans", "left"], ["--vocal-pans", "'left'"]),
    (["--vocal-pans", "auto,2"], ["--vocal-pans", "'2'"]),
    (["--models", "default,nope"], ["--models", "'nope'"]),
])
def test_speed_bad_options(bench, args, words):
    r = run(bench / "speed.py", "--seconds", "1", "--runs", "1", *args)
    refused(r, 2, "speed.py: error:", *words)
    assert r.stdout == ""


def test_speed_table(bench):
    r = run(bench / "speed.py", "--models", "default", "--seconds", "1", "--runs", "1", "--vocal-pans", "0")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1 s of 44100 Hz stereo, 2 threads, median of 1 runs taken in turn"
    assert lines[2].startswith("reference: STFT+iSTFT") and lines[3].startswith("default end to end")


# ---- memory.py -----------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--minutes", "0.1"], ["--minutes 0.1", "10-second"]),  # was rounded down to an empty file
    (["--minutes", "0"], ["--minutes 0"]),
    (["--minutes", "-1"], ["--minutes -1"]),
    (["--rate", "0"], ["--rate 0"]),
    (["--model", "nope"], ["--model", "'nope'"]),
    (["--channels", "0"], ["--channels 0", "at least 1"]),
    (["--channels", "2,x"], ["--channels 2,x"]),
])
def test_memory_bad_options(bench, args, words):
    r = run(bench / "memory.py", *args)
    refused(r, 2, "memory.py: error:", *words)
    assert r.stdout == ""


def test_memory_measures_the_length_asked_for(bench):
    # 12 s: one whole 10-second block and a part of one, both written and reported.
    r = run(bench / "memory.py", "--minutes", "0.2", "--rate", "8000")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "0.2 min of 8000 Hz stereo, model default"


def test_memory_measures_each_channel_count(bench):
    r = run(bench / "memory.py", "--minutes", "0.17", "--rate", "8000", "--channels", "1,3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "0.17 min of 8000 Hz audio at 1, 3 channels, model default"
    assert [line.split()[2:4] for line in lines[-2:]] == [["1", "channel"], ["3", "channels"]]


# ---- latency.py ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--block", "0"], ["--block 0"]),
    (["--block", "-512"], ["--block -512"]),
    (["--max-songs", "0"], ["--max-songs 0"]),
    (["--max-songs", "-1"], ["--max-songs -1"]),  # was a slice [:-1]: one song quietly dropped
    (["--try=-1:0.1"], ["'-1:0.1'"]),
    (["--try=0.1:0"], ["'0.1:0'"]),
    (["--try=0.1:nan"], ["'0.1:nan'"]),
    (["--model", "nope"], ["--model", "'nope'"]),
])
def test_latency_bad_options(bench, tmp_path, args, words):
    folder = tmp_path / "data" / "musdb7-train"
    for name in VALIDATION_SETS["musdb-valid"].songs[:2]:
        song(folder, name, seconds=0.5, rate=44100)
    r = run(bench / "latency.py", "--data", tmp_path / "data", *args)
    refused(r, 2, "latency.py: error:", *words)
    assert r.stdout == ""
    assert "done" not in r.stderr  # no mode was run


def test_memory_shows_why_the_command_failed(bench, tmp_path):
    junk = tmp_path / "junk.onnx"  # exists, so only the separating child finds it is no model
    junk.write_bytes(b"not a model" * 10)
    r = run(bench / "memory.py", "--minutes", "0.17", "--rate", "8000", "--model", junk)
    refused(r, 1, "memory.py: command failed:", f"cannot load model {junk}")


# ---- oracle.py and paired.py, the scoring helpers -----------------------------------------

sys.path.insert(0, str(REPO / "benchmarks"))
from oracle import oracle_mask  # noqa: E402
from paired import paired_change  # noqa: E402
from acapella.evaluate import evaluate_folder  # noqa: E402


def test_oracle_mask_gets_the_true_stems_and_bounds_masking(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    t = np.arange(3 * SR) / SR
    # vocals: a few harmonics, sparse in frequency; accompaniment: broadband noise
    voice = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 6))
    stems = {"tones over noise": (0.2 * voice, 0.1 * rng.standard_normal(t.size)),
             "tones alone": (0.2 * voice, np.zeros(t.size))}
    for name, (voc, acc) in stems.items():
        d = tmp_path / name
        d.mkdir()
        for stem, audio in zip(("vocals", "accompaniment"), (voc, acc)):
            sf.write(d / f"{stem}.wav", np.stack([audio, 0.5 * audio], 1).astype(np.float32), SR, subtype="FLOAT")

    seen = evaluate_folder(lambda mix, sr, refs: {"vocals": refs[0], "accompaniment": refs[1]},
                           tmp_path, songs=["tones over noise"], with_references=True)
    assert seen["aggregate"]["vocals"]["sdr_global"] > 100  # the references are the true stems

    mixture = evaluate_folder(lambda mix, sr: {"vocals": mix, "accompaniment": mix}, tmp_path,
                              songs=["tones over noise"])
    res = evaluate_folder(oracle_mask(256, 64), tmp_path, with_references=True)
    noisy, alone = res["songs"]["tones over noise"], res["songs"]["tones alone"]
    # masking the sparse tones out of white noise is easy; no mask is perfect, though
    assert 10 < noisy["vocals"]["sdr_v4"] - mixture["songs"]["tones over noise"]["vocals"]["sdr_v4"]
    assert noisy["vocals"]["sdr_global"] < 40
    # nothing to remove: the mask is 1 everywhere and the STFT round trip exact
    assert alone["vocals"]["sdr_global"] > 60


def test_paired_change_reads_per_song_differences():
    def res(songs):
        return {"songs": {name: {"vocals": {"sdr_v4": v, "sdr_global": g}, "seconds": 7.0}
                          for name, (v, g) in songs.items()}}

    new = res({"a": (5.0, 4.0), "b": (3.0, float("nan")), "c": (6.0, 6.0), "only new": (1.0, 1.0)})
    old = res({"a": (4.0, 4.5), "b": (3.5, 2.0), "c": (4.0, 5.5), "only old": (9.0, 9.0)})
    change = paired_change(new, old)
    v4 = change["vocals"]["sdr_v4"]  # differences 1.0, -0.5, 2.0
    assert v4["songs"] == 3 and v4["better"] == 2
    assert v4["mean"] == pytest.approx(2.5 / 3, abs=1e-4)
    assert v4["stderr"] == pytest.approx(np.std([1.0, -0.5, 2.0], ddof=1) / math.sqrt(3), abs=1e-4)
    glob = change["vocals"]["sdr_global"]  # b's NaN is left out: -0.5, 0.5
    assert glob == {"mean": 0.0, "stderr": 0.5, "better": 1, "songs": 2}
    assert "seconds" not in change


# ---- post_steps.py: candidate mask post-steps through the engine's hook ----------------------

def test_post_steps_run_through_the_separators_hook():
    from post_steps import separator as post_separator

    from acapella import Separator

    x = (np.random.default_rng(3).standard_normal((2, 60000)) * 0.1).astype(np.float32)
    plain = Separator().separate(x, 44100)
    # P = 1 leaves the mask as it is: the engine's own output, through the hook
    same = post_separator("temperature=1").separate(x, 44100)
    np.testing.assert_allclose(same["vocals"], plain["vocals"], atol=1e-6)
    for step in ("temperature=3", "wiener=1"):
        got = post_separator(step).separate(x, 44100)
        assert np.max(np.abs(got["vocals"] + got["accompaniment"] - x)) < 1e-6  # the stems still sum to the input
        assert np.max(np.abs(got["vocals"] - plain["vocals"])) > 1e-4  # and the step did something
    # streaming through the hook equals one call
    sep = post_separator("wiener=1:4")
    parts = list(sep.separate_blocks((x[:, i:i + 7000] for i in range(0, x.shape[1], 7000)), 44100))
    np.testing.assert_allclose(np.concatenate([p["vocals"] for p in parts], axis=1), sep.separate(x, 44100)["vocals"],
                               atol=1e-5)
