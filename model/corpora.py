"""Training clips as pools: the stems folders under the data root, and a built corpus cache.

`load_pools` reads ``musdb7-train/``, ``pjs-vocals/`` and ``mir1k-train/`` into memory (and keeps
them in an npz cache keyed on the files); `add_corpus` adds the items of a cache built by
``python -m acapella.model.corpus build`` as memory-mapped passages, so its hours of audio
cost page cache, not process memory.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from pedalboard.io import StreamResampler

from acapella.model.validation import is_validation_clip


# MIR-1K was recorded at 16 kHz: nothing above 8 kHz is real there, so the loss
# must not see those bins for examples that contain it.
MIR1K_BANDWIDTH_HZ = 8000.0



def load_clip(path: Path, sample_rate: int, channels: int) -> np.ndarray:
    """One audio file as float32 (channels, samples) at `sample_rate`; mono stays mono for a stereo model."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.T  # (channels, samples)
    if channels == 1:
        audio = audio.mean(axis=0, keepdims=True)
    if sr != sample_rate:
        rs = StreamResampler(sr, sample_rate, audio.shape[0])
        audio = np.concatenate([rs.process(np.ascontiguousarray(audio)), rs.process(None)], axis=1)
    return np.ascontiguousarray(audio, dtype=np.float32)


@dataclass
class Pool:
    """Lists of clips (channels, samples) at one rate, plus band-limit flags."""

    clips: list = field(default_factory=list)
    limited: list = field(default_factory=list)
    groups: list = field(default_factory=list)

    def add(self, clip: np.ndarray, limited: bool, group: str) -> None:
        self.clips.append(clip)
        self.limited.append(limited)
        self.groups.append(group)


@dataclass
class Pools:
    vocals: Pool
    accompaniment: Pool
    drums: Pool
    bass: Pool
    other: Pool
    skipped: list = field(default_factory=list)  # one line per song left out, saying why


# Corpus name (as --corpora and Mixer.GROUP_WEIGHTS spell it) -> its folder under the data root.
CORPUS_FOLDERS = {"musdb": "musdb7-train", "pjs": "pjs-vocals", "mir1k": "mir1k-train"}
STEMS = ["vocals", "accompaniment", "drums", "bass", "other"]
CACHE_VERSION = 2  # bump when what load_pools keeps, or how, changes


def _fingerprint(root: Path, include_validation: bool) -> str:
    """Every file the pools are read from, with its size and mtime, and whether its song is held out:
    a cache keyed on this is rebuilt when songs are added, removed or replaced, or when the
    validation lists in code change."""
    lines = []
    for folder in CORPUS_FOLDERS.values():
        base = root / folder
        if not base.is_dir():
            lines.append(f"{folder} -")
            continue
        for song in sorted(base.iterdir()):
            lines.append(f"{folder}/{song.name} {include_validation or not is_validation_clip(song.name)}")
            if song.is_dir():
                for f in sorted(song.iterdir()):
                    st = f.stat()
                    lines.append(f"  {f.name} {st.st_size} {st.st_mtime_ns}")
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()


def _stems_of(song: Path, names: list[str], needed: list[str]) -> tuple[dict[str, Path], str | None]:
    """The stem files of one song folder, or why the song cannot be used: a stem in `needed`
    is missing, or two stems differ in sample rate or length (their crops would not line up,
    and a paired example would put the voice out of time with its own band)."""
    files = {n: f for n in names if (f := next(song.glob(f"{n}.*"), None)) is not None}
    missing = [n for n in needed if n not in files]
    if missing:
        return files, f"no {' or '.join(missing)} stem"
    shapes = {}
    for n, f in files.items():
        try:
            info = sf.info(str(f))
        except Exception as exc:  # libsndfile's errors are RuntimeErrors, of several kinds
            return files, f"cannot read {f.name} ({str(exc).splitlines()[0]})"
        shapes[n] = (info.samplerate, info.frames)
    if len(set(shapes.values())) > 1:
        return files, "stems differ in sample rate or length (" + ", ".join(
            f"{n} {sr} Hz x {frames}" for n, (sr, frames) in shapes.items()) + ")"
    return files, None


def load_pools(root: Path, sample_rate: int, channels: int, cache_dir: Path | None = None,
               include_validation: bool = False) -> Pools:
    """Reads every training clip under `root` (validation songs and singers left out).

    A corpus folder that is not there adds nothing (the caller decides whether it was needed).
    A song that lacks its vocals or accompaniment, or has only some of drums, bass and other,
    or whose stems differ in rate or length, is left out whole and listed in `Pools.skipped`:
    paired examples take a song's stems by their place in each pool, so one song with a
    stem missing would pair every later song's voice with another song's band.
    """
    root = Path(root)
    key = hashlib.sha1(f"{CACHE_VERSION}|{root.resolve()}|{sample_rate}|{channels}|{include_validation}|"
                       f"{_fingerprint(root, include_validation)}".encode()).hexdigest()[:12]
    cache = Path(cache_dir) / f"pools-{key}.npz" if cache_dir else None
    names = STEMS
    if cache and cache.exists():
        data = np.load(cache, allow_pickle=True)
        return Pools(*[Pool(list(data[f"{n}_clips"]), list(data[f"{n}_limited"]), list(data[f"{n}_groups"]))
                       for n in names], skipped=[str(x) for x in data["skipped"]])

    def held_out(name: str) -> bool:
        return not include_validation and is_validation_clip(name)

    def songs(folder: str) -> list[Path]:
        base = root / folder
        return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    pools = Pools(*[Pool() for _ in names])

    def usable(song: Path, needed: list[str], names: list[str]) -> dict[str, Path] | None:
        files, why = _stems_of(song, names, needed)
        if why:
            pools.skipped.append(f"{song}: {why}; left out of training")
            return None
        return files

    parts = ["drums", "bass", "other"]
    for song in songs(CORPUS_FOLDERS["musdb"]):
        if held_out(song.name):
            continue
        files = usable(song, ["vocals", "accompaniment"], names)
        # Drums, bass and other rebuild a song's accompaniment only all together.
        if files is not None and any(n in files for n in parts):
            files = usable(song, names, names)
        if files is None:
            continue
        for n in names:
            if n in files:
                getattr(pools, n).add(load_clip(files[n], sample_rate, channels), False, "musdb")
    for song in songs(CORPUS_FOLDERS["pjs"]):
        files = usable(song, ["vocals"], ["vocals"])
        if files is not None:
            pools.vocals.add(load_clip(files["vocals"], sample_rate, channels), False, "pjs")
    for clip in songs(CORPUS_FOLDERS["mir1k"]):
        if held_out(clip.name):
            continue
        files = usable(clip, ["vocals", "accompaniment"], ["vocals", "accompaniment"])
        if files is not None:
            pools.vocals.add(load_clip(files["vocals"], sample_rate, channels), True, "mir1k")
            pools.accompaniment.add(load_clip(files["accompaniment"], sample_rate, channels), True, "mir1k")
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"skipped": np.array(pools.skipped, dtype=str)}
        for n in names:
            p = getattr(pools, n)
            arr = np.empty(len(p.clips), dtype=object)
            arr[:] = p.clips
            arrays[f"{n}_clips"] = arr
            arrays[f"{n}_limited"] = np.array(p.limited)
            arrays[f"{n}_groups"] = np.array(p.groups)
        # Written aside and renamed, so an interrupted load leaves no broken cache behind.
        part = cache.with_name(cache.name + ".part")
        with open(part, "wb") as f:
            np.savez(f, **arrays)
        os.replace(part, cache)
    return pools


class CachedClip:
    """A passage of one corpus item, memory-mapped: sliced like a float32 (channels, samples) array.

    It sums the item's stems it was given (the accompaniment of a rendered backing is the sum of
    its drums, bass and other), converts int16 to float only for the samples a crop takes, and
    averages the channels for a mono model (a mono item stays mono, as `load_clip` keeps it)."""

    def __init__(self, arrays: list[np.ndarray], start: int, stop: int, channels: int):
        self.arrays, self.start, self.stop = arrays, int(start), int(stop)
        self.mono = channels == 1 and arrays[0].shape[0] > 1
        self.shape = (1 if self.mono else arrays[0].shape[0], self.stop - self.start)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        a, b, step = slice(*(cols.start, cols.stop, cols.step)).indices(self.shape[1])
        out = sum(x[:, self.start + a:self.start + b:step].astype(np.float32) for x in self.arrays) / CORPUS_SCALE
        if self.mono:
            out = out.mean(axis=0, keepdims=True)
        return np.ascontiguousarray(out[rows])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)


CORPUS_SCALE = 32767.0  # int16 full scale, as the corpus engine writes it
CORPUS_RATE = 44100
CORPUS_FORMAT = 1


def corpus_group(source: str, variant: int | None) -> str:
    """The group (as --corpora and Mixer.GROUP_WEIGHTS spell it) of a corpus item: widened voices
    are their own groups, so their share is set apart from the real ones'."""
    if variant is not None and variant > 0:
        return f"{source}-wide"
    return source


def add_corpus(pools: Pools, folder: Path, sample_rate: int, channels: int) -> dict[str, float]:
    """Adds the kept items of the corpus cache `folder` to `pools`; returns the hours per group.

    Accompaniments (game soundtracks, rendered backings) join the accompaniment pool, a rendered
    backing's stems the drums, bass and other pools as well, and voices the vocals pool. Each item
    is cut into the passages the engine recorded. Items still being built (no item.json) are left
    for a later run; items the engine dropped or could not build are not there to add."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    items = sorted((folder / "items").glob("*/*/item.json"))
    if not items:
        raise ValueError(f"{folder}: no corpus items; build one with: python -m acapella.model.corpus build --out {folder}")
    if int(sample_rate) != CORPUS_RATE:
        raise ValueError(f"{folder}: the corpus is at {CORPUS_RATE} Hz and the model at {sample_rate} Hz; "
                         "train a 44.1 kHz model on it")
    if manifest.is_file() and json.loads(manifest.read_text()).get("format", CORPUS_FORMAT) != CORPUS_FORMAT:
        raise ValueError(f"{manifest}: a corpus of another format; build it again with this version")
    _enough_files(len(items) * 3 + 256)
    hours: dict[str, float] = {}
    for f in items:
        rec = json.loads(f.read_text())
        if rec.get("status") != "kept" or rec.get("format") != CORPUS_FORMAT:
            continue
        group = corpus_group(rec["source"], rec.get("variant"))
        stems = {s: np.load(f.parent / f"{s}.npy", mmap_mode="r") for s in rec["stems"]}
        limited = bool(rec.get("limited", False))
        for a, b in rec["segments"]:
            if "vocals" in stems:
                pools.vocals.add(CachedClip([stems["vocals"]], a, b, channels), limited, group)
                continue
            pools.accompaniment.add(CachedClip(list(stems.values()), a, b, channels), limited, group)
            for s in ("drums", "bass", "other"):
                if s in stems:
                    getattr(pools, s).add(CachedClip([stems[s]], a, b, channels), limited, group)
        hours[group] = hours.get(group, 0.0) + rec["seconds"] / 3600
    return hours


def _enough_files(n: int) -> None:
    """Every memory map holds a file descriptor: raise the soft limit when a large corpus needs it."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n if hard == resource.RLIM_INFINITY else min(n, hard), hard))


def named_amounts(text: str, names, what: str, example: str) -> dict[str, float]:
    """``a=0.8,b=2`` -> ``{"a": 0.8, "b": 2.0}``: an argparse type for per-corpus weights and amounts.
    Refuses a name not in `names`, a value that is not a number, and a negative one."""
    out = {}
    for part in text.split(","):
        name, _, value = (p.strip() for p in part.partition("="))
        if name not in names:
            raise argparse.ArgumentTypeError(f"unknown {what} {name!r} in {text!r}: use {', '.join(names)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} in {text!r} is not NAME=NUMBER, e.g. {example}") from None
        if not out[name] >= 0:
            raise argparse.ArgumentTypeError(f"{name} must not be negative, got {value}")
    return out
