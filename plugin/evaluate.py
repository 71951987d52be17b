"""Separation quality metrics (BSS Eval v4 SDR, the global "MDX" SDR) and `evaluate_folder`, which scores a folder of songs.

The held-out sets live in `acapella.model.validation`; the masking oracle and
the paired statistics of two results in ``benchmarks/``.

Only numpy is needed at run time; the numbers match museval (``museval.evaluate``
with ``mode="v4"``, 1 s windows, 1 s hop) to far below 0.01 dB.

Why there is no 512-tap filter estimation here: museval's v4 is the *images*
version of BSS Eval (``bsseval_sources_version=False``). There the estimate is
split as ``s_true + e_spat + e_interf + e_artif``, and SDR is
``|s_true|^2 / |e_spat + e_interf + e_artif|^2``. ``e_artif`` is defined as
whatever the estimate holds beyond ``s_true + e_spat + e_interf``, so that sum
is exactly ``estimate - reference``: the distortion filters cancel out of SDR
(they only matter for ISR, SIR and SAR). v4 SDR is therefore the per-window
signal-to-error ratio, which is what this module computes, with museval's
framing and silent-frame rules. The test suite checks this against numbers
produced by museval itself.

Example::

    >>> import numpy as np
    >>> from acapella.evaluate import sdr_v4, median_sdr, global_sdr
    >>> rng = np.random.default_rng(0)
    >>> refs = rng.standard_normal((2, 3 * 8000, 1))
    >>> ests = refs + 0.1 * rng.standard_normal(refs.shape)
    >>> frames = sdr_v4(refs, ests, sample_rate=8000)      # (2 sources, 3 frames)
    >>> [round(float(x)) for x in median_sdr(frames)]
    [20, 20]
    >>> round(global_sdr(refs[0], ests[0]))
    20
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from acapella.stems import STEMS


def sdr_v4(
    references: np.ndarray,
    estimates: np.ndarray,
    sample_rate: int,
    window_s: float = 1.0,
) -> np.ndarray:
    """Framewise BSS Eval v4 SDR in dB, shape (sources, frames).

    ``references`` and ``estimates`` are (sources, samples, channels) as in
    museval, or (sources, samples) for mono. Frames are ``window_s`` long with
    a hop of ``window_s``; a trailing partial window is dropped, and a signal
    shorter than one window is a single frame. As in museval, every source gets
    NaN in a frame where any reference or any estimate is silent, and a frame
    with no error at all is +inf. (museval refuses a source that is silent over
    the whole track; here it just gives all-NaN frames.)

    Example::

        >>> refs = np.random.default_rng(0).standard_normal((2, 16000, 2))
        >>> sdr_v4(refs, 0.5 * refs, sample_rate=8000).round(2)
        array([[6.02, 6.02],
               [6.02, 6.02]])
    """
    refs = np.asarray(references, dtype=np.float64)
    ests = np.asarray(estimates, dtype=np.float64)
    if refs.shape != ests.shape:
        raise ValueError(f"references {refs.shape} and estimates {ests.shape} differ in shape")
    if refs.ndim == 2:
        refs, ests = refs[..., None], ests[..., None]
    if refs.ndim != 3 or refs.shape[0] == 0 or refs.shape[1] == 0:
        raise ValueError(f"expected non-empty (sources, samples, channels), got {refs.shape}")
    window = int(window_s * sample_rate)  # museval truncates too: int(1.0 * rate)
    if window < 1:
        raise ValueError(f"window of {window_s} s at {sample_rate} Hz is under one sample")

    # museval's Framing with hop == window: whole windows from the start.
    n_sources, n_samples, n_channels = refs.shape
    n_frames = n_samples // window if window < n_samples else 1
    frame_len = min(window, n_samples)
    shape = (n_sources, n_frames, frame_len, n_channels)
    r = refs[:, : n_frames * frame_len].reshape(shape)
    e = ests[:, : n_frames * frame_len].reshape(shape)

    signal = np.sum(r**2, axis=(2, 3))
    error = np.sum((e - r) ** 2, axis=(2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        sdr = 10.0 * np.log10(signal / error)
    sdr[error == 0] = np.inf

    # museval's silence test, kept verbatim: a source is silent in a frame when
    # its channel sum is zero at every sample (so exact anti-phase stereo is too).
    silent = np.any(np.all(r.sum(axis=3) == 0, axis=2), axis=0)
    silent |= np.any(np.all(e.sum(axis=3) == 0, axis=2), axis=0)
    sdr[:, silent] = np.nan
    return sdr


def median_sdr(framewise: np.ndarray) -> np.ndarray:
    """Median over frames ignoring NaN frames, per source (NaN if all are NaN).

    This is museval's per-track aggregate (``np.nanmedian`` over frames).

    Example::

        >>> median_sdr(np.array([[1.0, np.nan, 3.0, 8.0], [np.nan] * 4]))
        array([ 3., nan])
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are expected
        return np.nanmedian(np.asarray(framewise, dtype=np.float64), axis=-1)


def global_sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-8) -> float:
    """Whole-track SDR in dB, the "new SDR" of the MDX challenges.

    ``10 * log10((sum ref^2 + eps) / (sum (ref - est)^2 + eps))`` over all
    samples and channels; ``eps`` keeps silence and perfect estimates finite.

    Example::

        >>> ref = np.ones((100, 2))
        >>> round(global_sdr(ref, 0.9 * ref), 6)  # error at 1/100 of the power
        20.0
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"reference {ref.shape} and estimate {est.shape} differ in shape")
    num = np.sum(ref**2) + eps
    den = np.sum((ref - est) ** 2) + eps
    return float(10.0 * np.log10(num / den))


SeparateFn = Callable[[np.ndarray, int], Mapping[str, np.ndarray]]


def stem_file(song_dir: Path, stem: str) -> Path:
    """The one `<stem>.*` file in a song folder (any audio format)."""
    found = sorted(song_dir.glob(f"{stem}.*"))
    if len(found) != 1:
        raise ValueError(f"{song_dir}: expected one {stem}.* file, found {len(found)}")
    return found[0]


def _as_layout(x: np.ndarray, like: np.ndarray, what: str) -> np.ndarray:
    # Separator accepts several layouts; give back the mixture's (samples, channels).
    x = np.asarray(x)
    if x.shape == like.shape:
        return x
    if x.ndim == 1 and like.shape == (x.shape[0], 1):
        return x[:, None]
    if x.shape == like.shape[::-1]:
        return x.T
    raise ValueError(f"{what} has shape {x.shape}, mixture has {like.shape}")


def list_songs(folder: str | Path) -> list[str]:
    """Sorted names of the sub-folders of ``folder`` holding vocals.* and accompaniment.*."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    return sorted(
        d.name
        for d in folder.iterdir()
        if d.is_dir() and all(any(d.glob(f"{s}.*")) for s in STEMS)
    )


def incomplete_songs(folder: str | Path) -> dict[str, list[str]]:
    """Sub-folders of ``folder`` holding some stems but not all, with the stems each lacks.

    `list_songs` leaves them out; a caller that scores a whole folder reports
    them, so that an aggregate over fewer songs than the folder holds is not
    taken for the whole folder. Folders with no stem at all are not songs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    out = {}
    for d in sorted(folder.iterdir()):
        if d.is_dir():
            lacking = [s for s in STEMS if not any(d.glob(f"{s}.*"))]
            if 0 < len(lacking) < len(STEMS):
                out[d.name] = lacking
    return out


def evaluate_folder(
    separate_fn: SeparateFn,
    folder: str | Path,
    songs: Iterable[str] | None = None,
    window_s: float = 1.0,
    progress: Callable[[str, dict], None] | None = None,
    with_references: bool = False,
    prepare: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> dict:
    """Separate and score every song of ``folder``, one song in memory at a time.

    Each song is a sub-folder with ``vocals.*`` and ``accompaniment.*`` (any
    format soundfile reads; sample aligned, same length and rate). The mixture
    is their sum, as float32 (samples, channels), and
    ``separate_fn(mixture, sample_rate)`` must return
    ``{"vocals": ..., "accompaniment": ...}`` shaped like the mixture. With
    ``with_references=True`` it is called as ``separate_fn(mixture, sample_rate,
    references)``, ``references`` the true stems stacked (2, samples, channels),
    for oracle estimates such as `oracle_mask`. ``prepare(references, sample_rate)``
    (same stacking), if given, returns the stems to mix and score instead: a robustness
    probe, such as the vocals panned to one side.

    Returns ``{"songs": {name: per_song}, "aggregate": {stem: ...}}`` where
    per_song is ``{"vocals": {"sdr_v4", "sdr_global"}, "accompaniment": {...},
    "sample_rate", "seconds", "separate_seconds"}`` (sdr_v4 is the median over
    frames), and aggregate is, per stem, ``sdr_v4``: the median over songs of
    those medians (songs with no valid frame skipped, as museval does) and
    ``sdr_global``: the mean over songs. ``progress(name, per_song)`` is called
    after each song.

    Example::

        >>> mixture_as_estimate = lambda mix, sr: {"vocals": mix, "accompaniment": mix}
        >>> res = evaluate_folder(mixture_as_estimate, "../shared/data/musdb7-train",
        ...                       songs=["ANiMAL - Rockshow"])  # doctest: +SKIP
        >>> res["aggregate"]["vocals"]  # doctest: +SKIP
        {'sdr_v4': ..., 'sdr_global': ...}
    """
    import soundfile as sf  # a dependency of the package, but only needed here

    folder = Path(folder)
    names = list_songs(folder) if songs is None else list(songs)
    if not names:
        raise ValueError(f"no song folders with {' and '.join(STEMS)} in {folder}")

    def unreadable(path: Path, e: Exception) -> ValueError:
        # libsndfile's own words, without its "Error opening '<path>'" that repeats the path
        why = getattr(e, "error_string", None) or str(e).splitlines()[0]
        return ValueError(f"{path}: cannot read it as audio ({why.rstrip('.')}): replace or remove the file")

    # Every file's header first (cheap): a bad file found after an hour of separating wastes the hour.
    for name in names:
        song_dir = folder / name
        if not song_dir.is_dir():
            raise ValueError(f"song folder {song_dir} not found")
        for stem in STEMS:
            path = stem_file(song_dir, stem)
            try:
                sf.info(str(path))
            except (RuntimeError, OSError) as e:  # soundfile's errors are RuntimeErrors
                raise unreadable(path, e) from None

    per_song: dict[str, dict] = {}
    for name in names:
        song_dir = folder / name
        refs, rates = [], []
        for stem in STEMS:
            path = stem_file(song_dir, stem)
            try:
                audio, rate = sf.read(path, dtype="float32", always_2d=True)
            except (RuntimeError, OSError) as e:  # a header that reads over a body that does not
                raise unreadable(path, e) from None
            refs.append(audio)
            rates.append(rate)
        if rates[0] != rates[1] or refs[0].shape != refs[1].shape:
            shapes = [r.shape for r in refs]
            raise ValueError(f"{name}: stems differ in rate or shape: {rates}, {shapes}")
        if prepare is not None:
            refs = list(prepare(np.stack(refs), rates[0]))
        mixture = refs[0] + refs[1]

        start = time.perf_counter()
        # copy: a separator may work in place
        args = (mixture.copy(), rates[0]) + ((np.stack(refs),) if with_references else ())
        out = separate_fn(*args)
        elapsed = time.perf_counter() - start
        ests = [_as_layout(out[stem], mixture, f"{name}: {stem} estimate") for stem in STEMS]

        frames = sdr_v4(np.stack(refs), np.stack(ests), rates[0], window_s)
        medians = median_sdr(frames)
        result: dict = {
            stem: {"sdr_v4": float(medians[i]), "sdr_global": global_sdr(refs[i], ests[i])}
            for i, stem in enumerate(STEMS)
        }
        result.update(
            sample_rate=int(rates[0]),
            seconds=mixture.shape[0] / rates[0],
            separate_seconds=elapsed,
        )
        per_song[name] = result
        if progress is not None:
            progress(name, result)
        del refs, ests, mixture, out  # keep only one song's audio alive

    aggregate = {}
    for stem in STEMS:
        v4 = np.array([r[stem]["sdr_v4"] for r in per_song.values()])
        glob = [r[stem]["sdr_global"] for r in per_song.values()]
        aggregate[stem] = {
            "sdr_v4": float(median_sdr(v4)),
            "sdr_global": float(np.mean(glob)),
        }
    return {"songs": per_song, "aggregate": aggregate}
