"""The corpus engine: builds a training cache of accompaniments and widened vocals.

    python -m acapella.model.corpus build --out DIR [--hours game=2,pop909=1] [--variants 1]
    python -m acapella.model.corpus summary DIR

Sources (every one is optional; one that is missing is reported in one line and skipped):

- ``game``: instrumental game soundtracks from Debian packages (``apt-get download``, ``dpkg-deb -x``;
  ``.pk3`` files are zip archives of Ogg), screened with the shipped model's vocal-energy estimate
  (passages where a voice is heard are cut out, tracks that are mostly voice are dropped), sound
  effects (short files) dropped, loudness normalised.
- ``groove``, ``pop909``, ``music21``: MIDI backings rendered part by part (`acapella.model.render`)
  and kept as ``drums``/``bass``/``other`` stems whose sum is the accompaniment, sample for sample.
- ``musdb``, ``pjs``, ``mir1k``, ``eif``: real voices widened with pitch, formant and tempo changes and
  the EQ, compression and reverb of a mix (validation songs and singers left out); ``eif``'s own
  clips are stored too, as the loader of the stems folders does not know them.

Each item is a folder ``DIR/items/SOURCE/ID/`` holding int16 ``.npy`` stems at 44.1 kHz (so training
memory-maps them, `acapella.model.corpora.add_corpus`) and an ``item.json`` written last, atomically:
it marks the item done, kept or dropped (and why), so a rerun continues where the last one stopped,
and a rerun with larger ``--hours`` extends the cache. Candidates are taken in a seeded order and
each item has its own seeded random stream, so an item comes out the same whichever run builds it.
``manifest.json`` records the options, seed, tool and package versions, and the hours (and CPU
hours) per source with what was dropped.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import soundfile as sf

from acapella.model.corpora import named_amounts
from acapella.model.paths import default_data_root
from acapella.model import render
from acapella.model.render import (PEAK, SAMPLE_RATE, STEM_PARTS, Part, active_rms_db,
                                   drumkits, loudness_gain, midi_tracks, pick_program, read_audio,
                                   render_backing, resample, BASS_PROGRAMS, derived_bass)

CACHE_FORMAT = 1  # bump when the layout of an item changes
FULL_SCALE = 32767.0

GAME_PACKAGES = [
    "wesnoth-1.16-music", "warzone2100-music", "ufoai-music", "nexuiz-music", "singularity-music",
    "drascula-music", "planetblupi-music-ogg", "hyperrogue-music", "asc-music", "supertux-data",
    "hedgewars-data", "flare-game", "extremetuxracer-data", "lincity-ng-data",
]
AUDIO_EXTENSIONS = {".ogg", ".oga", ".opus", ".flac", ".wav", ".mp3"}
MIDI_SOURCES = ("groove", "pop909", "music21")
VOCAL_SOURCES = ("musdb", "pjs", "mir1k", "eif")
ACCOMPANIMENT_SOURCES = ("game",) + MIDI_SOURCES

# Hours of accompaniment kept per source when --hours does not say; with --variants 2 this
# fills about 9 GB.
DEFAULT_HOURS = {"game": 7.0, "groove": 0.5, "pop909": 1.2, "music21": 0.5}


# Screening: a window whose vocal estimate holds more than this share of the energy is taken to
# hold a voice. On 40 MUSDB previews the default model's estimate sat at -11.4 dB or above on
# every mixture, and at -19.6 dB or below on 95% of the accompaniments alone.
VOICE_DB = -16.0
SCREEN_WINDOW_S = 5.0
MIN_MUSIC_S = 30.0  # shorter game files are jingles and sound effects
MIN_PASSAGE_S = 10.0
SEGMENT_S = 30.0  # the pools hold passages of at most this length


def log(msg: str) -> None:
    """One line on stderr, above any progress bar."""
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def item_rng(seed: int, source: str, item: str) -> np.random.Generator:
    """The random stream of one item: the same whatever order or process the build takes."""
    digest = hashlib.sha1(f"{source}/{item}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:150]


# --------------------------------------------------------------------------------------------
# Writing the cache

def to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 1.0) * FULL_SCALE).astype(np.int16)


def save_npy(path: Path, x: np.ndarray) -> None:
    """`x` as int16 (channels, samples) at `path`, written aside and renamed."""
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        np.save(f, to_int16(x))
    os.replace(part, path)


def write_json(path: Path, data: dict) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=1, default=str))
    os.replace(part, path)


# --------------------------------------------------------------------------------------------
# Candidates of each source

def groove_files(data: Path) -> list[dict]:
    import csv

    base = data / "midi" / "groove"
    with open(base / "info.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if (base / row["midi_filename"]).is_file()]


def groove_parts(path: Path) -> list[Part]:
    tracks, _, _ = midi_tracks(path)
    events = sorted((e for _, _, ev in tracks for e in ev), key=lambda e: e[0])
    return [Part("drums", None, events, "drums")]


def looped(events: list, loop_s: float, until: float, start: float = 0.0) -> list:
    out, k = [], 0
    while start + k * loop_s < until:
        out += [(start + k * loop_s + t, m) for t, m in events if start + k * loop_s + t < until]
        k += 1
    return out


def pop909_parts(path: Path, rng: np.random.Generator, grooves: list[dict], data: Path, info: dict) -> list[Part]:
    """The arrangement of one POP909 song: its piano and bridge as chord and line parts, its
    melody sometimes played by a lead instrument, a bass line derived from the piano, and,
    usually, a Groove MIDI drum beat looped under it at the song's tempo."""
    tracks, beats, _ = midi_tracks(path)
    by_name = {name.upper(): ev for name, _, ev in tracks}
    parts = []
    if "PIANO" in by_name:
        parts.append(Part("other", pick_program(rng, "chords"), by_name["PIANO"], "piano"))
        parts.append(Part("bass", int(rng.choice(BASS_PROGRAMS)), derived_bass(by_name["PIANO"], beats), "bass"))
    if "BRIDGE" in by_name:
        parts.append(Part("other", pick_program(rng, "line"), by_name["BRIDGE"], "bridge"))
    if "MELODY" in by_name and rng.random() < 0.5:
        parts.append(Part("other", pick_program(rng, "lead"), by_name["MELODY"], "melody"))
    end = max(p.end for p in parts) if parts else 0
    beats_4 = [g for g in grooves if g["beat_type"] == "beat" and g["time_signature"] == "4-4"]
    if parts and beats_4 and rng.random() < 0.85 and len(beats) > 8:
        g = beats_4[rng.integers(len(beats_4))]
        song_beat = float(np.median(np.diff(beats)))
        groove_beat = 60.0 / float(g["bpm"])
        ratio = groove_beat / song_beat
        while ratio > 1.45:
            ratio /= 2
        while ratio < 0.7:
            ratio *= 2
        events = groove_parts(data / "midi" / "groove" / g["midi_filename"])[0].events
        events = [(t / ratio, m) for t, m in events]
        bar = 4 * groove_beat / ratio
        bars = max(1, int((max(t for t, _ in events) + 0.1) // bar))
        first = min(p.events[0][0] for p in parts if p.events)
        parts.append(Part("drums", None, looped([e for e in events if e[0] < bars * bar], bars * bar, end, first), "drums"))
        info["groove"] = g["midi_filename"]
    return parts


MUSIC21_COMPOSERS = ["bach", "beethoven", "haydn", "mozart", "monteverdi", "palestrina", "corelli", "handel",
                     "schubert", "joplin"]


def music21_files() -> list[str]:
    from music21 import corpus

    out = []
    for composer in MUSIC21_COMPOSERS:
        try:
            out += [str(p) for p in corpus.getComposer(composer)]
        except Exception:  # a composer missing from this music21 version's corpus
            continue
    return sorted(set(out))


def music21_parts(path: str, rng: np.random.Generator, tmp: Path) -> list[Part]:
    """The parts of a music21 corpus score (written out by music21 as MIDI, one track per part):
    the lowest as the bass, the others as lines of a classical ensemble."""
    from music21 import converter

    score = converter.parse(path)
    if hasattr(score, "scores"):  # an opus: its first score
        score = score.scores[0]
    mpath = tmp / "score.mid"
    score.write("midi", fp=str(mpath))
    tracks, _, _ = midi_tracks(mpath)
    if len(tracks) < 2:
        return []
    pitches = [np.mean([m.note for _, m in ev if m.type == "note_on" and m.velocity > 0]) for _, _, ev in tracks]
    low = int(np.argmin(pitches))
    parts = []
    for i, (name, _, ev) in enumerate(tracks):
        if i == low:
            parts.append(Part("bass", pick_program(rng, "classical_bass"), ev, name or "bass"))
        else:
            parts.append(Part("other", pick_program(rng, "classical"), ev, name or f"part{i}"))
    return parts


def game_tracks(packages: list[str], downloads: Path, extract: Path, report) -> tuple[list[tuple[str, Path]], dict]:
    """The music files of the game packages: downloaded (once) with apt-get download, unpacked with
    dpkg-deb -x (and the zip members of .pk3 files), as ``[(package, file)]``, plus each package's
    version. A package that cannot be fetched or unpacked is reported and skipped."""
    downloads.mkdir(parents=True, exist_ok=True)
    versions, tracks = {}, []
    for pkg in packages:
        debs = sorted(downloads.glob(f"{pkg}_*.deb"))
        if not debs:
            run = subprocess.run(["apt-get", "download", pkg], cwd=downloads, capture_output=True, text=True)
            debs = sorted(downloads.glob(f"{pkg}_*.deb"))
            if run.returncode != 0 or not debs:
                why = (run.stderr.strip().splitlines() or ["no .deb"])[-1]
                report(f"game: package {pkg} could not be downloaded ({why}); skipped")
                continue
        deb = debs[-1]
        target = extract / pkg
        done = target / ".extracted"
        if not done.is_file():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            run = subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], capture_output=True, text=True)
            if run.returncode != 0:
                report(f"game: package {pkg}: {deb.name} could not be unpacked ({run.stderr.strip()[:200]}); skipped")
                continue
            for pk3 in sorted(target.rglob("*.pk3")):
                try:
                    with zipfile.ZipFile(pk3) as z:
                        for member in z.namelist():
                            if Path(member).suffix.lower() in AUDIO_EXTENSIONS:
                                z.extract(member, pk3.with_suffix(".pk3.d"))
                except (zipfile.BadZipFile, OSError) as exc:
                    report(f"game: {pkg}: {pk3.name} is not a readable zip archive ({exc}); skipped")
            done.write_text("")
        versions[pkg] = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                                       text=True).stdout.strip()
        music_package = pkg.endswith(("-music", "-music-ogg"))
        for f in sorted(target.rglob("*")):
            if f.suffix.lower() not in AUDIO_EXTENSIONS or not f.is_file():
                continue
            rel = f.relative_to(target)
            if music_package or any(part.lower() == "music" for part in rel.parts[:-1]):
                tracks.append((pkg, f))
    return tracks, versions


def vocal_clips(data: Path) -> dict[str, list[tuple[str, Path, bool]]]:
    """The vocal stems to widen, per source: ``[(clip name, file, band-limited)]``; validation
    songs and singers are left out."""
    from acapella.model.validation import is_validation_clip

    folders = {"musdb": "musdb7-train", "pjs": "pjs-vocals", "mir1k": "mir1k-train", "eif": "eif-vocals"}
    out = {}
    for source, folder in folders.items():
        base = data / folder
        clips = []
        if base.is_dir():
            for song in sorted(p for p in base.iterdir() if p.is_dir()):
                if is_validation_clip(song.name):
                    continue
                f = next(iter(sorted(song.glob("vocals.*"))), None)
                if f is not None:
                    limited = source == "mir1k" or (source == "eif" and song.name.startswith("Hydrogen"))
                    clips.append((song.name, f, limited))
        out[source] = clips
    return out


# --------------------------------------------------------------------------------------------
# Items

_SEPARATOR = None


def separator(threads: int):
    global _SEPARATOR
    if _SEPARATOR is None:
        from acapella import Separator

        _SEPARATOR = Separator("default", threads=threads, vocal_pan=0.0)
    return _SEPARATOR


def voice_windows(x: np.ndarray, threads: int) -> np.ndarray:
    """Per SCREEN_WINDOW_S window of `x` (2, n) at 44.1 kHz: the share of its energy (dB) that the
    shipped model calls vocals."""
    v = separator(threads).separate(x if x.shape[0] == 2 else np.repeat(x, 2, axis=0), SAMPLE_RATE)["vocals"]
    w = int(SCREEN_WINDOW_S * SAMPLE_RATE)
    n = max(1, int(np.ceil(x.shape[1] / w)))
    out = np.empty(n)
    xx = x if x.shape[0] == 2 else np.repeat(x, 2, axis=0)
    for i in range(n):
        ev = float(np.square(v[:, i * w:(i + 1) * w], dtype=np.float64).sum())
        ex = float(np.square(xx[:, i * w:(i + 1) * w], dtype=np.float64).sum())
        out[i] = 10 * np.log10((ev + 1e-9) / (ex + 1e-9)) if ex > 1e-6 else -100.0
    return out


def segments_of(length: int, spans: list[tuple[int, int]] | None = None) -> list[list[int]]:
    """[start, stop) passages of at most SEGMENT_S within `spans` (default: the whole length)."""
    seg = int(SEGMENT_S * SAMPLE_RATE)
    out = []
    for a, b in spans or [(0, length)]:
        n = max(1, int(np.ceil((b - a) / seg)))
        edges = np.linspace(a, b, n + 1).astype(int)
        out += [[int(s), int(e)] for s, e in zip(edges[:-1], edges[1:])]
    return out


def build_game(item_dir: Path, path: Path, threads: int) -> dict:
    x, sr = read_audio(path)
    seconds = x.shape[1] / sr
    if seconds < MIN_MUSIC_S:
        return {"status": "dropped", "reason": "sound effect or jingle (under 30 s)", "seconds": seconds}
    x = resample(x, sr)
    if x.shape[0] > 2:
        x = x[:2]
    if active_rms_db(x) < -60:
        return {"status": "dropped", "reason": "silent", "seconds": seconds}
    voice = voice_windows(x, threads)
    w = int(SCREEN_WINDOW_S * SAMPLE_RATE)
    flagged = voice > VOICE_DB
    if flagged.mean() > 0.5:
        return {"status": "dropped", "reason": "holds voices (screen)", "seconds": seconds,
                "voice_db_median": round(float(np.median(voice)), 1)}
    spans, start = [], None
    for i, f in enumerate(list(flagged) + [True]):
        if not f and start is None:
            start = i
        elif f and start is not None:
            a, b = start * w, min(i * w, x.shape[1])
            if b - a >= MIN_PASSAGE_S * SAMPLE_RATE:
                spans.append((a, b))
            start = None
    if not spans:
        return {"status": "dropped", "reason": "no passage of 10 s without a voice (screen)", "seconds": seconds}
    kept = np.concatenate([x[:, a:b] for a, b in spans], axis=1)
    kept *= loudness_gain(kept)
    stored, pos = [], 0
    for a, b in spans:
        stored.append((pos, pos + b - a))
        pos += b - a
    save_npy(item_dir / "accompaniment.npy", kept)
    dropped = seconds - kept.shape[1] / SAMPLE_RATE
    return {"status": "kept", "seconds": kept.shape[1] / SAMPLE_RATE, "stems": ["accompaniment"],
            "segments": segments_of(kept.shape[1], stored), "source_rate": sr,
            "limited": sr < 32000, "dropped_seconds": round(dropped, 1),
            "voice_windows_dropped": int(flagged.sum())}


def finish_backing(item_dir: Path, stems: dict[str, np.ndarray], info: dict) -> dict:
    mix = sum(stems.values())
    g = loudness_gain(mix)
    present = [s for s in STEM_PARTS if np.abs(stems[s]).max() > 1e-5]
    if not present or g == 0:
        return {"status": "dropped", "reason": "rendered silent", **info}
    # One gain for every stem keeps their sum the accompaniment; no stem may clip on its own either.
    g = min(g, PEAK / max(float(np.abs(stems[s]).max()) for s in present))
    # Trim the silence before the first and after the last sound.
    env = np.abs(mix).max(axis=0) * g > 1e-4
    idx = np.flatnonzero(env)
    a, b = int(idx[0]), int(idx[-1]) + 1
    for s in present:
        save_npy(item_dir / f"{s}.npy", stems[s][:, a:b] * g)
    return {"status": "kept", "seconds": (b - a) / SAMPLE_RATE, "stems": present,
            "segments": segments_of(b - a), "limited": False, **info}


def build_midi(source: str, item_dir: Path, ref: str, seed: int, data: Path) -> dict:
    rng = item_rng(seed, source, ref)
    info: dict = {"file": ref}
    tempo = float(rng.uniform(0.85, 1.15))
    transpose = int(rng.integers(-4, 5))
    with tempfile.TemporaryDirectory(prefix="acapella-midi-") as tmp:
        if source == "groove":
            parts = groove_parts(data / "midi" / "groove" / ref)
        elif source == "pop909":
            parts = pop909_parts(data / "midi" / "pop909" / ref, rng, groove_files(data), data, info)
        else:
            parts = music21_parts(ref, rng, Path(tmp))
    if not parts:
        return {"status": "dropped", "reason": "no parts with notes", **info}
    if max(p.end for p in parts) / tempo < 8:
        return {"status": "dropped", "reason": "under 8 s", **info}
    stems = render_backing(parts, rng, tempo, transpose, info)
    return finish_backing(item_dir, stems, info)


def widen(x: np.ndarray, rng: np.random.Generator, limited: bool, info: dict) -> np.ndarray:
    """A voice as another singer in another song might give it: pitch moved by up to 5 semitones
    either way, formants by up to 3 (a larger or smaller vocal tract), tempo by up to 15%, then the
    EQ, compression and reverb a mix puts on a voice.

    A formant shift is a speed change (pitch and formants together) followed by a formant-keeping
    pitch shift back. Band-limited clips only move up, so their empty top band never falls into
    the part of the spectrum the loss sees. Rubber Band's faster engine (``high_quality=False``)
    takes a third of the time of its finer one, which would make the voices the slowest part of
    a build."""
    from pedalboard import Compressor, HighShelfFilter, LowShelfFilter, Pedalboard, PeakFilter, Reverb, time_stretch

    pitch = float(rng.uniform(0 if limited else -5, 5))
    formant = float(rng.uniform(0 if limited else -2.5, 2.5))
    tempo = float(rng.uniform(0.88, 1.15))
    rate = 2 ** (formant / 12)
    y = resample(x, SAMPLE_RATE * rate, fast=True)  # played `rate` times as fast: pitch and formants up by `formant`
    y = time_stretch(np.ascontiguousarray(y, dtype=np.float32), SAMPLE_RATE, stretch_factor=tempo / rate,
                     pitch_shift_in_semitones=pitch - formant, preserve_formants=True, high_quality=False)
    u = rng.uniform
    chain = [LowShelfFilter(cutoff_frequency_hz=u(80, 250), gain_db=u(-6, 3)),
             PeakFilter(cutoff_frequency_hz=u(1500, 5000), gain_db=u(-3, 5), q=u(0.7, 2)),
             HighShelfFilter(cutoff_frequency_hz=u(6000, 12000), gain_db=u(-4, 4))]
    if rng.random() < 0.6:
        chain.append(Compressor(threshold_db=u(-30, -12), ratio=u(2, 6), attack_ms=u(2, 20), release_ms=u(50, 250)))
    if rng.random() < 0.5:
        chain.append(Reverb(room_size=u(0.1, 0.8), damping=u(0.3, 0.8), wet_level=u(0.03, 0.25),
                            dry_level=u(0.8, 1.0), width=u(0.3, 1.0)))
    y = Pedalboard(chain)(y, SAMPLE_RATE)
    info.update(pitch=round(pitch, 2), formant=round(formant, 2), tempo=round(tempo, 3),
                chain=[type(p).__name__ for p in chain])
    return y


def build_vocal(item_dir: Path, source: str, name: str, path: Path, limited: bool, variant: int, seed: int) -> dict:
    x, sr = read_audio(path)
    x = resample(x, sr)
    info: dict = {"file": str(path), "variant": variant}
    if variant > 0:
        x = widen(x, item_rng(seed, source, f"{name}-v{variant}"), limited, info)
    g = loudness_gain(x)
    if g == 0:
        return {"status": "dropped", "reason": "silent", **info}
    x = x * g
    save_npy(item_dir / "vocals.npy", x)
    return {"status": "kept", "seconds": x.shape[1] / SAMPLE_RATE, "stems": ["vocals"], "limited": limited,
            "segments": segments_of(x.shape[1]), **info}


def run_item(kind: str, source: str, item_id: str, item_dir: str, args: tuple) -> tuple[str, str, dict]:
    """Builds one item in a worker process; returns its record (also written as item.json)."""
    import resource

    item_dir = Path(item_dir)
    shutil.rmtree(item_dir, ignore_errors=True)
    item_dir.mkdir(parents=True)
    # CPU seconds, fluidsynth's included: what a build costs, whatever else the machine runs.
    cpu0 = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    try:
        if kind == "game":
            rec = build_game(item_dir, *args)
        elif kind == "midi":
            rec = build_midi(source, item_dir, *args)
        else:
            rec = build_vocal(item_dir, source, *args)
    except Exception as exc:  # a corrupt file or failed render: recorded and reported, never silent
        rec = {"status": "failed", "reason": f"{type(exc).__name__}: {(str(exc) or '').splitlines()[0][:300] if str(exc) else ''}"}
    cpu = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - cpu0
    rec.update(source=source, id=item_id, format=CACHE_FORMAT, cpu_seconds=round(cpu, 2))
    write_json(item_dir / "item.json", rec)
    return source, item_id, rec


# --------------------------------------------------------------------------------------------
# The build

def hours_option(text: str) -> dict[str, float]:
    """``game=2,pop909=1`` -> hours to keep per source, for ``--hours``."""
    return named_amounts(text, ACCOMPANIMENT_SOURCES + VOCAL_SOURCES, "source", "game=2")


def versions() -> dict:
    """What the build used, with versions: tools, Python packages and Debian packages."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "pedalboard", "mido", "music21", "soundfile", "onnxruntime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    run = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True) if shutil.which("fluidsynth") else None
    out["fluidsynth"] = run.stdout.splitlines()[0] if run and run.stdout else None
    debs = {}
    for pkg in ["fluidsynth", "hydrogen-drumkits"] + [p for _, p in render.FONTS.values()]:
        q = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        debs[pkg] = q.stdout.strip() if q.returncode == 0 else None
    out["debian"] = debs
    model = Path(__file__).with_name("default.onnx")
    out["screen_model_sha1"] = hashlib.sha1(model.read_bytes()).hexdigest() if model.is_file() else None
    return out


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def read_items(out: Path) -> dict[tuple[str, str], dict]:
    recs = {}
    for f in (out / "items").glob("*/*/item.json"):
        try:
            rec = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # an unfinished write: the item is built again
        if rec.get("format") == CACHE_FORMAT:
            recs[(rec["source"], rec["id"])] = rec
    return recs


def summarize(recs: dict, out: Path) -> dict:
    per = {}
    for (source, _), rec in recs.items():
        s = per.setdefault(source, {"items": 0, "kept": 0, "hours": 0.0, "dropped": {}, "failed": 0,
                                    "cpu_hours": 0.0})
        s["items"] += 1
        s["cpu_hours"] += rec.get("cpu_seconds", 0.0) / 3600
        if rec["status"] == "kept":
            s["kept"] += 1
            s["hours"] += rec["seconds"] / 3600
            if rec.get("dropped_seconds"):
                key = "voice passages cut (screen)"
                s["dropped"][key] = s["dropped"].get(key, 0.0) + rec["dropped_seconds"] / 3600
        elif rec["status"] == "dropped":
            key = rec["reason"]
            s["dropped"][key] = s["dropped"].get(key, 0.0) + rec.get("seconds", 0) / 3600
        else:
            s["failed"] += 1
    for s in per.values():
        s["hours"] = round(s["hours"], 3)
        s["cpu_hours"] = round(s["cpu_hours"], 3)
        s["dropped"] = {k: round(v, 3) for k, v in s["dropped"].items()}
    return per


def print_summary(per: dict, size: int) -> None:
    print(f"{'source':10} {'items':>6} {'kept':>6} {'hours':>7} {'failed':>6} {'CPU h':>6}  dropped (hours)")
    for source in ACCOMPANIMENT_SOURCES + VOCAL_SOURCES:
        if source in per:
            s = per[source]
            dropped = "; ".join(f"{k}: {v:.2f}" for k, v in s["dropped"].items()) or "-"
            print(f"{source:10} {s['items']:6d} {s['kept']:6d} {s['hours']:7.2f} {s['failed']:6d} "
                  f"{s.get('cpu_hours', 0):6.2f}  {dropped}")
    acc = sum(per[s]["hours"] for s in ACCOMPANIMENT_SOURCES if s in per)
    voc = sum(per[s]["hours"] for s in VOCAL_SOURCES if s in per)
    print(f"accompaniment {acc:.2f} h, vocals {voc:.2f} h, {size / 1e9:.2f} GB on disk")


def plan(args, report) -> tuple[dict[str, list], dict]:
    """Every candidate item per source, in the build's (seeded) order: ``{source: [(kind, id, args)]}``."""
    data = args.data
    rng = np.random.default_rng(args.seed)
    queues: dict[str, list] = {}
    names: dict[str, str] = {}
    extra = {}
    if args.hours.get("game", 0) > 0:
        tracks, extra["game_packages"] = game_tracks(args.packages, args.downloads, args.out / "extracted", report)
        # Interleave the packages, so a small --hours draws from every soundtrack.
        by_pkg: dict[str, list] = {}
        for pkg, f in tracks:
            by_pkg.setdefault(pkg, []).append(f)
        lists = []
        for pkg in sorted(by_pkg):
            files = list(by_pkg[pkg])
            rng.shuffle(files)
            lists.append([(pkg, f) for f in files])
        order = [x for group in zip(*[l + [None] * (max(map(len, lists)) - len(l)) for l in lists]) for x in group if x] if lists else []
        queues["game"] = [("game", safe_id(f"{pkg}/{f.relative_to(args.out / 'extracted' / pkg)}"), (str(f), args.screen_threads))
                          for pkg, f in order]
    for source in MIDI_SOURCES:
        if args.hours.get(source, 0) <= 0:
            continue
        if not shutil.which("fluidsynth"):
            report(f"{source}: fluidsynth is not installed (apt-get install fluidsynth); skipped")
            continue
        try:
            if source == "groove":
                # Fills of a bar or two are too short to be a backing (under 8 s).
                refs = [r["midi_filename"] for r in groove_files(data) if float(r.get("duration") or 60) >= 8]
            elif source == "pop909":
                base = data / "midi" / "pop909"
                refs = sorted(str(p.relative_to(base)) for p in base.glob("*/*.mid"))
            else:
                refs = music21_files()
                names = {r: r.split("/corpus/", 1)[-1] for r in refs}
        except (OSError, ImportError) as exc:
            report(f"{source}: its files cannot be listed ({exc}); skipped")
            continue
        if not refs:
            report(f"{source}: no MIDI files found; skipped")
            continue
        refs = list(refs)
        rng.shuffle(refs)
        queues[source] = [("midi", safe_id(names[r] if source == "music21" else r), (r, args.seed, data)) for r in refs]
    clips = vocal_clips(data)
    for source in VOCAL_SOURCES:
        if args.hours.get(source) == 0:
            continue
        if not clips.get(source):
            if args.variants or source == "eif":
                report(f"{source}: no vocal clips under {data}; skipped")
            continue
        variants = range(0 if source == "eif" else 1, args.variants + 1)
        items = [("vocal", safe_id(f"{name}-v{k}"), (name, str(f), lim, k, args.seed))
                 for k in variants for name, f, lim in clips[source]]
        order = rng.permutation(len(items))  # so a smaller --hours takes clips from every singer
        queues[source] = [items[i] for i in order]
    return queues, extra


def queued_seconds(queue: list) -> float:
    """The seconds of audio a queue of voice items holds (their source files' lengths)."""
    total = 0.0
    for kind, _, a in queue:
        if kind == "vocal":
            try:
                info = sf.info(a[1])
                total += info.frames / info.samplerate
            except Exception:  # unreadable: its item reports it when it is built
                continue
    return total


def build(args) -> int:
    from tqdm import tqdm

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    problems = []

    def report(line: str) -> None:
        problems.append(line)
        log(f"warning: {line}")

    t0 = time.time()
    queues, extra = plan(args, report)
    recs = read_items(out)
    for rec in recs.values():
        if rec["status"] == "failed":
            report(f"{rec['source']}: {rec['id']}: {rec['reason']}; skipped (remove its item folder to try again)")
    # Seconds of audio to keep per source; a voice source without an amount takes all its clips.
    targets = {s: args.hours[s] * 3600 if s in args.hours else queued_seconds(queues.get(s, []))
               for s in ACCOMPANIMENT_SOURCES + VOCAL_SOURCES}
    size = sum(dir_bytes(d) for d in (out / "items", args.downloads) if d.is_dir())
    cap = args.max_gb * 1e9
    done_s = {s: sum(r["seconds"] for (src, _), r in recs.items() if src == s and r["status"] == "kept")
              for s in queues}
    todo = []  # (source, kind, id, args), in order
    for source, q in queues.items():
        for kind, item_id, a in q:
            todo.append((source, kind, item_id, a))
    total = sum(targets[s] for s in queues)
    bar = tqdm(total=round(total / 60), unit="min", desc="corpus (minutes of audio)", dynamic_ncols=True)
    bar.update(round(sum(min(done_s[s], targets[s]) for s in queues) / 60))
    shown = bar.n
    capped = False

    def wanted(source: str) -> bool:
        return done_s[source] < targets[source]

    def typical(source: str) -> float:
        kept = [r["seconds"] for (s, _), r in recs.items() if s == source and r["status"] == "kept"]
        return float(np.mean(kept)) if kept else 60.0

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        running = {}
        it = iter(todo)
        exhausted = False
        while True:
            while not exhausted and len(running) < 2 * args.jobs:
                nxt = next(it, None)
                if nxt is None:
                    exhausted = True
                    break
                source, kind, item_id, a = nxt
                if (source, item_id) in recs or not wanted(source):
                    continue
                # Count what is in flight, so a source does not overshoot by a whole queue.
                pending = sum(1 for s in running.values() if s == source)
                if pending and done_s[source] + pending * typical(source) >= targets[source]:
                    continue
                if size >= cap:
                    if not capped:
                        report(f"the cache reached --max-gb {args.max_gb:g} ({size / 1e9:.2f} GB): no more items are added")
                        capped = True
                    exhausted = True
                    break
                fut = pool.submit(run_item, kind, source, item_id, str(out / "items" / source / item_id), a)
                running[fut] = source
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                running.pop(fut)
                source, item_id, rec = fut.result()
                recs[(source, item_id)] = rec
                item_dir = out / "items" / source / item_id
                size += sum(f.stat().st_size for f in item_dir.iterdir())
                if rec["status"] == "failed":
                    report(f"{source}: {item_id}: {rec['reason']}; skipped")
                if rec["status"] == "kept":
                    done_s[source] += rec["seconds"]
                now = round(sum(min(done_s[s], targets[s]) for s in queues) / 60)
                bar.update(now - shown)
                shown = now
                bar.set_postfix_str(f"{source} {size / 1e9:.2f} GB", refresh=True)
            # Re-scan skipped candidates of sources still short of their target.
            if exhausted and not running and any(wanted(s) for s in queues) and not capped:
                rest = [(s, k, i, a) for s, k, i, a in todo if (s, i) not in recs and wanted(s)]
                if rest:
                    it, exhausted = iter(rest), False
    bar.close()
    for source in ACCOMPANIMENT_SOURCES + VOCAL_SOURCES:
        if source in args.hours and source in queues and done_s[source] < targets[source] and not capped:
            report(f"{source}: only {done_s[source] / 3600:.2f} of {targets[source] / 3600:g} hours are there to take")
    shutil.rmtree(out / "extracted", ignore_errors=True)
    per = summarize(recs, out)
    size = dir_bytes(out)
    manifest = {
        "format": CACHE_FORMAT, "sample_rate": SAMPLE_RATE, "seed": args.seed,
        "command": "python -m acapella.model.corpus " + " ".join(sys.argv[1:]),
        "options": {"hours": args.hours, "variants": args.variants, "max_gb": args.max_gb, "data": str(args.data)},
        "screen": {"model": "default", "voice_db": VOICE_DB, "window_s": SCREEN_WINDOW_S, "min_music_s": MIN_MUSIC_S},
        "versions": versions() | extra, "soundfonts": {k: v[0] for k, v in render.FONTS.items() if Path(v[0]).is_file()},
        "drumkits": [p.name for p in drumkits()],
        "sources": per, "problems": problems, "bytes": size,
        "build_seconds_last_run": round(time.time() - t0),
    }
    write_json(out / "manifest.json", manifest)
    print_summary(per, size)
    print(f"built in {(time.time() - t0) / 60:.1f} min; manifest: {out / 'manifest.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m acapella.model.corpus", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or continue, or extend) a corpus cache")
    b.add_argument("--out", type=Path, required=True, help="the cache folder (a rerun continues it)")
    b.add_argument("--data", type=Path, default=None,
                   help="the folder holding the stems and midi/ (default: $ACAPELLA_DATA, else ../shared/data)")
    b.add_argument("--hours", type=hours_option, default={}, metavar="SOURCE=H,...",
                   help="hours to keep per source (default: " + ",".join(f"{k}={v:g}" for k, v in DEFAULT_HOURS.items())
                        + ", and every clip of " + ", ".join(VOCAL_SOURCES) + " times --variants); 0 leaves a source out")
    b.add_argument("--variants", type=int, default=2,
                   help="widened copies of each training voice (musdb, pjs, mir1k, eif); 0 for none")
    b.add_argument("--downloads", type=Path, default=None, help="where the .deb files go (default: OUT/downloads)")
    b.add_argument("--packages", type=lambda t: [p.strip() for p in t.split(",") if p.strip()], default=GAME_PACKAGES,
                   metavar="NAME,...", help="the Debian packages the game soundtracks come from (default: the "
                                            f"{len(GAME_PACKAGES)} listed in the data README)")
    b.add_argument("--max-gb", type=float, default=10.0, help="stop adding items when the cache holds this much")
    b.add_argument("--jobs", type=int, default=2, help="items built at once (processes)")
    b.add_argument("--seed", type=int, default=1234)
    s = sub.add_parser("summary", help="print the hours per source of a cache")
    s.add_argument("dir", type=Path)
    args = ap.parse_args(argv)
    if args.command == "summary":
        if not (args.dir / "items").is_dir():
            ap.error(f"{args.dir}: not a corpus cache (no items/ folder); build one with: build --out {args.dir}")
        print_summary(summarize(read_items(args.dir), args.dir), dir_bytes(args.dir))
        return 0
    args.hours = dict(DEFAULT_HOURS, **args.hours)
    if args.variants < 0:
        ap.error(f"--variants {args.variants}: give 0 or more")
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: give 1 or more")
    if not args.max_gb > 0:
        ap.error(f"--max-gb {args.max_gb}: give a size above 0")
    args.data = args.data or default_data_root()
    if not args.data.is_dir():
        ap.error(f"--data {args.data}: no such folder; give the folder that holds musdb7-train/ and midi/")
    args.downloads = args.downloads or args.out / "downloads"
    args.screen_threads = max(1, 2 // args.jobs)
    return build(args)


if __name__ == "__main__":
    raise SystemExit(main())
