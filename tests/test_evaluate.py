"""Tests for acapella.evaluate against numbers produced by museval 0.4.1.

The expected arrays below were computed once with museval's own v4 code
(``museval.metrics.bss_eval(refs, ests, window=w, hop=w, compute_permutation=False,
framewise_filters=False, bsseval_sources_version=False)``, which is what
``museval.evaluate(..., mode="v4")`` calls, with ``w = int(window_s * sample_rate)``)
on the signals built by the ``_case_*`` recipes here, so the test needs no museval.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from acapella.evaluate import evaluate_folder, global_sdr, list_songs, median_sdr, sdr_v4
from acapella.model.validation import VALIDATION_SETS, is_validation_clip

SR = 8000  # low rate keeps the museval reference run and this test fast
NAN = math.nan


def _fir(x: np.ndarray, taps: list[float]) -> np.ndarray:
    """Causal FIR filter along axis 0 (samples)."""
    y = np.zeros_like(x)
    for k, t in enumerate(taps):
        y[k:] += t * x[: len(x) - k]
    return y


def _case_stereo() -> tuple[np.ndarray, np.ndarray]:
    """3.5 s stereo, 2 sources; the last half window is dropped by the framing."""
    rng = np.random.default_rng(1234)
    n = int(3.5 * SR)
    voice = rng.standard_normal((n, 2)) * np.linspace(0.2, 1.0, n)[:, None]
    accomp = _fir(rng.standard_normal((n, 2)), [0.5, 0.4, 0.3, 0.2])
    accomp[:, 1] += 0.3 * accomp[:, 0]  # some correlation across channels
    est_voice = _fir(voice, [0.9, 0.15, -0.05]) + 0.25 * accomp
    est_voice += 0.05 * rng.standard_normal((n, 2))
    est_accomp = (voice + accomp) - est_voice  # a mask-style complement
    est_accomp[:, [0, 1]] = 0.8 * est_accomp[:, [0, 1]] + 0.2 * est_accomp[:, [1, 0]]
    return np.stack([voice, accomp]), np.stack([est_voice, est_accomp])


def _case_mono_silences() -> tuple[np.ndarray, np.ndarray]:
    """4 s mono as (sources, samples): a silent reference frame and a silent estimate frame."""
    rng = np.random.default_rng(99)
    n = 4 * SR
    refs = rng.standard_normal((2, n)) * np.array([[1.0], [0.3]])
    refs[0, SR : 2 * SR] = 0.0  # reference silent in frame 1: museval gives NaN to all sources
    ests = refs + 0.2 * rng.standard_normal((2, n))
    ests[0] += 0.1 * refs[1]
    ests[1, 2 * SR : 3 * SR] = 0.0  # estimate silent in frame 2: NaN again
    return refs, ests


def _case_short() -> tuple[np.ndarray, np.ndarray]:
    """0.6 s, shorter than a window: museval makes it one frame."""
    rng = np.random.default_rng(7)
    n = int(0.6 * SR)
    refs = rng.standard_normal((2, n, 2))
    ests = 0.7 * refs + 0.4 * refs[::-1] + 0.1 * rng.standard_normal(refs.shape)
    return refs, ests


# museval 0.4.1 output for each case (sources x frames, dB)
MUSEVAL_STEREO = [[3.9319, 7.8111, 9.9615], [8.0846, 7.926, 7.682]]
MUSEVAL_STEREO_HALF_WINDOW = [
    [2.1829, 5.1089, 7.0745, 8.3834, 9.5924, 10.2426, 11.1267],
    [8.1123, 8.0574, 8.0326, 7.8238, 7.7056, 7.6609, 7.1867],
]
MUSEVAL_MONO_SILENCES = [[13.7168, NAN, NAN, 13.8078], [3.5453, NAN, NAN, 3.6744]]
MUSEVAL_SHORT = [[5.7983], [5.8867]]


def _check(got: np.ndarray, want) -> None:
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], atol=0.01, rtol=0)


def test_sdr_v4_matches_museval_stereo() -> None:
    refs, ests = _case_stereo()
    _check(sdr_v4(refs, ests, SR), MUSEVAL_STEREO)
    _check(sdr_v4(refs, ests, SR, window_s=0.5), MUSEVAL_STEREO_HALF_WINDOW)


def test_sdr_v4_matches_museval_silent_frames() -> None:
    refs, ests = _case_mono_silences()
    got = sdr_v4(refs, ests, SR)
    _check(got, MUSEVAL_MONO_SILENCES)
    np.testing.assert_allclose(
        median_sdr(got), np.nanmedian(np.asarray(MUSEVAL_MONO_SILENCES), axis=1), atol=0.01
    )


def test_sdr_v4_matches_museval_short_signal() -> None:
    refs, ests = _case_short()
    _check(sdr_v4(refs, ests, SR), MUSEVAL_SHORT)


def test_perfect_estimate_is_very_high() -> None:
    refs, _ = _case_stereo()
    assert np.all(sdr_v4(refs, refs.copy(), SR) > 100)
    assert global_sdr(refs[0], refs[0].copy()) > 100


def test_global_sdr_analytic() -> None:
    rng = np.random.default_rng(5)
    ref = np.sin(2 * np.pi * 440 * np.arange(SR) / SR)[:, None] * np.ones((1, 2))
    noise = rng.standard_normal(ref.shape)
    # scale the noise to exactly 1/1000 of the reference energy: 30 dB
    noise *= np.sqrt(np.sum(ref**2) / 1000 / np.sum(noise**2))
    assert global_sdr(ref, ref + noise) == pytest.approx(30.0, abs=1e-6)
    assert global_sdr(ref, np.zeros_like(ref)) == pytest.approx(0.0, abs=1e-6)
    assert global_sdr(ref, 0.5 * ref) == pytest.approx(10 * math.log10(4), abs=1e-6)
    # eps keeps silence finite: silent reference and estimate give 0 dB
    assert global_sdr(np.zeros(10), np.zeros(10)) == pytest.approx(0.0)


def test_shape_mismatch_is_rejected() -> None:
    refs, ests = _case_short()
    with pytest.raises(ValueError):
        sdr_v4(refs, ests[:, :-1], SR)
    with pytest.raises(ValueError):
        global_sdr(refs[0], ests[0, :, :1])


def test_evaluate_folder(tmp_path: Path) -> None:
    sf = pytest.importorskip("soundfile")
    rng = np.random.default_rng(3)
    # two tiny synthetic songs (never real audio): stereo wav and mono flac
    for name, channels, ext in [("song a", 2, "wav"), ("song b", 1, "flac")]:
        d = tmp_path / name
        d.mkdir()
        for stem, gain in [("vocals", 0.3), ("accompaniment", 0.2)]:
            audio = (gain * rng.standard_normal((int(2.5 * SR), channels))).astype(np.float32)
            sf.write(d / f"{stem}.{ext}", audio, SR, subtype="FLOAT" if ext == "wav" else "PCM_24")
    (tmp_path / "not a song").mkdir()

    assert list_songs(tmp_path) == ["song a", "song b"]
    baseline = evaluate_folder(lambda mix, sr: {"vocals": mix, "accompaniment": mix}, tmp_path)
    assert set(baseline["songs"]) == {"song a", "song b"}

    # recompute song a directly as the reference for the numbers
    voc, sr = sf.read(tmp_path / "song a" / "vocals.wav", dtype="float32", always_2d=True)
    acc, _ = sf.read(tmp_path / "song a" / "accompaniment.wav", dtype="float32", always_2d=True)
    mix = voc + acc
    want = median_sdr(sdr_v4(np.stack([voc, acc]), np.stack([mix, mix]), sr))
    song_a = baseline["songs"]["song a"]
    assert song_a["vocals"]["sdr_v4"] == pytest.approx(want[0])
    assert song_a["accompaniment"]["sdr_v4"] == pytest.approx(want[1])
    assert song_a["vocals"]["sdr_global"] == pytest.approx(global_sdr(voc, mix))
    agg = baseline["aggregate"]["vocals"]
    per_song = [r["vocals"] for r in baseline["songs"].values()]
    assert agg["sdr_v4"] == pytest.approx(np.median([r["sdr_v4"] for r in per_song]))
    assert agg["sdr_global"] == pytest.approx(np.mean([r["sdr_global"] for r in per_song]))
    # vocals are 3.5 dB louder than the accompaniment: mixture SDR is about +3.5 / -3.5 dB
    assert 1 < agg["sdr_v4"] < 6
    assert -6 < baseline["aggregate"]["accompaniment"]["sdr_v4"] < -1

    # a channels-first (or 1-D mono) answer is accepted; a wrong length is not
    def oracle_channels_first(mix: np.ndarray, sr: int) -> dict:
        d = tmp_path / ("song a" if mix.shape[1] == 2 else "song b")
        stems = {}
        for s in ("vocals", "accompaniment"):
            stems[s] = sf.read(next(d.glob(f"{s}.*")), dtype="float32", always_2d=True)[0]
        return {s: a.T.squeeze() for s, a in stems.items()}

    oracle = evaluate_folder(oracle_channels_first, tmp_path, songs=["song a", "song b"])
    assert oracle["aggregate"]["vocals"]["sdr_global"] > 100
    with pytest.raises(ValueError):
        evaluate_folder(lambda mix, sr: {"vocals": mix[1:], "accompaniment": mix}, tmp_path)
    with pytest.raises(ValueError):
        evaluate_folder(lambda mix, sr: {}, tmp_path, songs=["missing"])


def test_prepare_changes_the_stems_that_are_mixed_and_scored(tmp_path: Path) -> None:
    sf = pytest.importorskip("soundfile")
    from acapella.model.degradations import pan_stereo

    rng = np.random.default_rng(4)
    d = tmp_path / "song"
    d.mkdir()
    voc = (0.3 * rng.standard_normal((SR, 2))).astype(np.float32)
    acc = (0.2 * rng.standard_normal((SR, 2))).astype(np.float32)
    for stem, audio in (("vocals", voc), ("accompaniment", acc)):
        sf.write(d / f"{stem}.wav", audio, SR, subtype="FLOAT")
    seen = {}

    def separate(mix: np.ndarray, sr: int, refs: np.ndarray) -> dict:
        seen["mix"], seen["refs"] = mix, refs
        return {"vocals": refs[0], "accompaniment": refs[1]}

    res = evaluate_folder(separate, tmp_path, with_references=True,
                          prepare=lambda refs, sr: np.stack([pan_stereo(refs[0].T, -1.0).T, refs[1]]))
    # the vocals went hard left (constant power), the mixture is the sum of the new stems,
    # and the scores are against them: the references handed back score as perfect
    np.testing.assert_allclose(seen["refs"][0][:, 1], 0.0, atol=1e-7)
    np.testing.assert_allclose(seen["refs"][0][:, 0], np.sqrt(2) * voc[:, 0], rtol=1e-5)
    np.testing.assert_allclose(seen["refs"][1], acc)
    np.testing.assert_allclose(seen["mix"], seen["refs"][0] + seen["refs"][1], rtol=1e-6)
    assert res["aggregate"]["vocals"]["sdr_global"] > 100


def test_validation_sets() -> None:
    musdb = VALIDATION_SETS["musdb-valid"]
    assert len(musdb.songs) == 14 and is_validation_clip("Triviul - Angelsaint")
    assert is_validation_clip("bobon_3_07") and not is_validation_clip("Ani_1_01")
    assert not is_validation_clip("ANiMAL - Clinic A")

    data = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    if not (data / musdb.folder).is_dir():
        pytest.skip("shared training data not present")
    assert musdb.select(list_songs(data / musdb.folder)) == sorted(musdb.songs)
    mir = VALIDATION_SETS["mir1k-valid"]
    # the whole set's size is what quality.py --record checks a folder against
    assert len(mir.select(list_songs(data / mir.folder))) == mir.full_size == 93
    assert musdb.full_size == 14


def test_unreadable_or_incomplete_songs_are_named(tmp_path: Path) -> None:
    sf = pytest.importorskip("soundfile")
    from acapella.evaluate import incomplete_songs

    tone = (0.3 * np.sin(np.arange(SR) / 5.0)).astype(np.float32)
    for name in ("a ok", "b bad", "c no vocals"):
        (tmp_path / name).mkdir()
        sf.write(tmp_path / name / "accompaniment.wav", tone, SR)
        if name != "c no vocals":
            sf.write(tmp_path / name / "vocals.wav", tone, SR)
    (tmp_path / "b bad" / "vocals.wav").write_bytes(b"not audio at all" * 10)
    (tmp_path / "d notes").mkdir()  # no stem at all: not a song

    assert list_songs(tmp_path) == ["a ok", "b bad"]
    assert incomplete_songs(tmp_path) == {"c no vocals": ["vocals"]}
    separated = []

    def mixture(mix, sr):
        separated.append(mix)
        return {"vocals": mix, "accompaniment": mix}

    with pytest.raises(ValueError, match=r"b bad.vocals\.wav: cannot read it as audio"):
        evaluate_folder(mixture, tmp_path)
    assert separated == []  # found from the headers, before any song is separated
    with pytest.raises(ValueError, match="not a folder"):
        incomplete_songs(tmp_path / "nowhere")
