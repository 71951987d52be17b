"""Training data: stem pools from ../shared/data and a dynamic mixer over them.

Each training example is built fresh: vocals of one clip over an accompaniment
from another (or one remixed from the drums, bass and other of three songs),
or, with probability `paired`, one real song's own stems, aligned,
with random gains, offsets, panning (with probability `pan`, the voice
anywhere from hard left to hard right), channel swaps, EQ and (optionally) speed
changes that shift pitch and tempo together, vocal effects (reverb, delay,
chorus, compression) of the kind a produced song puts on its voice, and (with
probability `degrade`) the whole song heard in a room or through a lower sample
rate, as live and old recordings are, or (with probability `clip`) driven into
clipping, as loud masters are, or (with probability `mp3`) written as an MP3
file and read back. The mixture is always
the sum of the very stems used as targets, so it stays exact.
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from pedalboard import Chorus, Compressor, Delay, Pedalboard, Resample, Reverb
from pedalboard.io import AudioFile, StreamResampler

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


class Mixer:
    """Draws (mixture, vocals, accompaniment, limited) examples of a fixed length."""

    GROUP_WEIGHTS = {"musdb": 0.5, "pjs": 0.2, "mir1k": 0.3}

    def __init__(self, pools: Pools, length: int, channels: int, seed: int, varispeed: float = 0.0,
                 semitones: float = 2.0, mono: float = 0.0, weights: dict | None = None, effects: float = 0.0,
                 sample_rate: int = 44100, paired: float = 0.0, layers: float = 0.0, reverse: float = 0.0,
                 quiet: float = 0.0, pan: float = 0.0, degrade: float = 0.0, clip: float = 0.0,
                 mp3: float = 0.0):
        self.p, self.length, self.channels = pools, length, channels
        self.weights = dict(self.GROUP_WEIGHTS, **(weights or {}))
        self.varispeed, self.semitones, self.mono, self.effects = varispeed, semitones, mono, effects
        self.paired, self.layers, self.reverse, self.quiet = paired, layers, reverse, quiet
        self.pan, self.degrade, self.clip, self.mp3 = pan, degrade, clip, mp3
        self.sample_rate = sample_rate
        self.rng = np.random.default_rng(seed)

    def _crop(self, clip: np.ndarray, length: int | None = None, start: float | None = None) -> np.ndarray:
        """`length` samples of `clip`, zero-padded if shorter; `start` in [0, 1) picks the
        offset (stems of one song share it), else it is drawn."""
        length = length or self.length
        n = clip.shape[1]
        out = np.zeros((clip.shape[0], length), dtype=np.float32)
        span = abs(n - length) + 1
        s = self.rng.integers(0, span) if start is None else int(start * span)
        if n >= length:
            out[:] = clip[:, s:s + length]
        else:
            out[:, s:s + n] = clip
        return out

    def _rate(self, limited: bool) -> float:
        """A speed factor for varispeed, 1.0 for a plain crop."""
        if self.rng.random() >= self.varispeed:
            return 1.0
        # Slowing a band-limited clip would pull its empty top band below the loss
        # cutoff and teach the network that voice never reaches there.
        return 2.0 ** (self.rng.uniform(0.0 if limited else -self.semitones, self.semitones) / 12)

    def _segment(self, clip: np.ndarray, limited: bool, rate: float | None = None,
                 start: float | None = None) -> np.ndarray:
        """A crop, with probability `varispeed` played faster or slower (pitch and tempo together)."""
        rate = self._rate(limited) if rate is None else rate
        if rate == 1.0:
            return self._crop(clip, start=start)
        src = self._crop(clip, int(np.ceil(self.length * rate)) + 64, start=start)
        # 4-point Lagrange: 25x faster than windowed sinc, and transparent enough
        # for a training example whose target goes through the very same filter.
        rs = StreamResampler(44100 * rate, 44100, src.shape[0], Resample.Quality.Lagrange)
        out = np.concatenate([rs.process(src), rs.process(None)], axis=1)
        return np.ascontiguousarray(out[:, :self.length])

    def _stereo(self, x: np.ndarray, swap: bool | None = None) -> np.ndarray:
        if self.channels == 1:
            return x
        if x.shape[0] == 1:  # mono source: random pan
            g = self.rng.uniform(0.6, 1.0, size=(2, 1)).astype(np.float32)
            return x * g
        if self.rng.random() < 0.5 if swap is None else swap:
            x = x[::-1]
        return np.ascontiguousarray(x)

    def _vocal_effects(self, v: np.ndarray) -> np.ndarray:
        """A random reverb, sometimes with delay, chorus or compression: produced songs wet
        their vocals, while PJS and MIR-1K were sung dry. The target is the wet voice,
        as in MUSDB's stems."""
        u = self.rng.uniform
        chain = []
        if self.rng.random() < 0.3:
            chain.append(Compressor(threshold_db=u(-30, -10), ratio=u(2, 6), attack_ms=u(2, 20), release_ms=u(50, 300)))
        if self.rng.random() < 0.3:
            chain.append(Chorus(rate_hz=u(0.3, 2.0), depth=u(0.05, 0.3), mix=u(0.1, 0.4)))
        if self.rng.random() < 0.3:
            chain.append(Delay(delay_seconds=u(0.08, 0.5), feedback=u(0.05, 0.4), mix=u(0.05, 0.25)))
        chain.append(Reverb(room_size=u(0.1, 0.9), damping=u(0.2, 0.8), wet_level=u(0.05, 0.35),
                            dry_level=u(0.7, 1.0), width=u(0.3, 1.0)))
        return Pedalboard(chain)(v, self.sample_rate).astype(np.float32)

    def _degraded(self, v: np.ndarray, a: np.ndarray):
        """Both stems through one room or one lower sample rate: a concert recording or a
        low-rate file. Both effects are linear, so the stems still sum to what the network
        hears, and the targets are the stems as heard there."""
        if self.rng.random() < 0.5:
            u = self.rng.uniform
            params = dict(room_size=u(0.3, 0.95), damping=u(0.2, 0.8), wet_level=u(0.1, 0.6),
                          dry_level=u(0.4, 1.0), width=u(0.5, 1.0))
            return room(v, self.sample_rate, **params), room(a, self.sample_rate, **params)
        rate = float(self.rng.choice(BAND_LIMIT_RATES))
        return band_limited(v, self.sample_rate, rate), band_limited(a, self.sample_rate, rate)

    def _group(self, groups: list[str]) -> str:
        # Draw a corpus first, then a clip: MIR-1K has most clips but is amateur and
        # band-limited, so it must not dominate the professionally mixed songs.
        groups = sorted(set(groups))
        w = np.array([self.weights.get(g, 1.0) for g in groups])
        return groups[self.rng.choice(len(groups), p=w / w.sum())]

    def _reversed(self) -> bool:
        """Whether to play a draw backwards (probability `reverse`): pitch, timbre and
        harmony stay while the order in time is new. Measured in run 31 (model card): it
        lowered the produced MUSDB songs, so the shipped model's recipe leaves it at 0."""
        return bool(self.reverse) and self.rng.random() < self.reverse

    def _pick(self, pool: Pool):
        g = self._group(pool.groups)
        members = [i for i, x in enumerate(pool.groups) if x == g]
        i = members[self.rng.integers(len(members))]
        x = self._stereo(self._segment(pool.clips[i], pool.limited[i]))
        return (np.ascontiguousarray(x[:, ::-1]) if self._reversed() else x), pool.limited[i]

    def _layered(self, pool: Pool, x: np.ndarray, limited: bool):
        """With probability `layers`, `x` with a second clip of its kind under it: real
        vocal stems hold backing voices, harmonies and duets, and real bands are often
        denser than one song's accompaniment: combinations that 80 songs alone cannot give."""
        if not self.layers or self.rng.random() >= self.layers:
            return x, limited
        y, y_lim = self._pick(pool)
        return x + y * self._db(-12, -3), limited or y_lim

    def _song(self):
        """The vocals and accompaniment of one real song, cropped at the same place, sped
        and swapped alike: the voice in time and in tune with its own band, which a
        mix of two songs never is. A MUSDB accompaniment is sometimes rebuilt from the
        song's own drums, bass and other at new gains."""
        g = self._group([x for x in self.p.vocals.groups if x in self.p.accompaniment.groups])

        def members(pool: Pool) -> list[int]:
            return [i for i, x in enumerate(pool.groups) if x == g]

        # Each pool lists a corpus' clips in the same (sorted) order, so the k-th vocals
        # and the k-th accompaniment of a corpus are one song.
        vi, ai = members(self.p.vocals), members(self.p.accompaniment)
        if len(vi) != len(ai):
            raise ValueError(f"corpus {g} has {len(vi)} vocals but {len(ai)} accompaniments: "
                             "paired examples need one of each per song")
        k = self.rng.integers(len(vi))
        limited = self.p.vocals.limited[vi[k]]
        rate, start, swap = self._rate(limited), self.rng.random(), self.rng.random() < 0.5
        step = -1 if self._reversed() else 1  # both stems alike, so they stay in time

        def stem(pool: Pool, i: int) -> np.ndarray:
            x = self._stereo(self._segment(pool.clips[i], limited, rate, start), swap)
            return np.ascontiguousarray(x[:, ::step])

        v = stem(self.p.vocals, vi[k])
        parts = [self.p.drums, self.p.bass, self.p.other]
        if self.rng.random() < 0.4 and all(len(members(p)) == len(vi) for p in parts):
            a = sum(stem(p, members(p)[k]) * self._db(-6, 3) for p in parts)
        else:
            a = stem(self.p.accompaniment, ai[k])
        return v, a, limited

    def _db(self, lo: float, hi: float) -> float:
        return float(10 ** (self.rng.uniform(lo, hi) / 20))

    def example(self):
        if self.paired and self.rng.random() < self.paired:
            v, a, v_lim = self._song()
            a_lim = v_lim
            if self.effects and self.rng.random() < self.effects:
                v = self._vocal_effects(v)
        else:
            r = self.rng.random()
            v, v_lim = self._layered(self.p.vocals, *self._pick(self.p.vocals))
            if self.effects and self.rng.random() < self.effects:
                v = self._vocal_effects(v)
            if r < 0.4 and self.p.drums.clips:
                parts = [self._pick(pool)[0] * self._db(-6, 3) for pool in (self.p.drums, self.p.bass, self.p.other)]
                a, a_lim = sum(parts), False
            else:
                a, a_lim = self._pick(self.p.accompaniment)
            a, a_lim = self._layered(self.p.accompaniment, a, a_lim)
        v = v * self._db(-9, 3)
        a = a * self._db(-6, 3)
        if self.pan and self.channels == 2 and self.rng.random() < self.pan:
            # Early stereo records (and some mixes since) put the voice hard to one side,
            # while every stem here sings from the centre: a network that learns "only the
            # centre sings" hands a panned voice to the accompaniment.
            v = pan_stereo(v, self.rng.uniform(-1.0, 1.0))
        if self.rng.random() < 0.05:
            v = v * 0.0  # instrumental stretches: the mask must stay shut
        if self.mono and self.channels == 2 and self.rng.random() < self.mono:
            # Mono songs reach a stereo model as two equal channels: no side signal at all.
            v = np.repeat(v.mean(axis=0, keepdims=True), 2, axis=0)
            a = np.repeat(a.mean(axis=0, keepdims=True), 2, axis=0)
        if self.degrade and self.rng.random() < self.degrade:
            v, a = self._degraded(v, a)
        if self.clip and self.rng.random() < self.clip:
            # Loud masters are clipped: the mixture's peaks are cut, so the stems are cut with them.
            v, a = clipped(np.stack([v, a]), self.rng.uniform(0.0, 12.0))
        if self.quiet and self.rng.random() < self.quiet:
            # Home recordings and unmastered mixes sit far below a mastered song, and the
            # network reads log1p magnitudes, which change shape with level, not only offset.
            g = self._db(-24, -6)
            v, a = v * g, a * g
        if self.mp3 and self.rng.random() < self.mp3:
            # Most songs people separate arrive as MP3s: the network hears coding noise and a
            # low-passed top and must still give back the song's own vocals.
            v, a = mp3_coded(v, a, self.sample_rate, int(self.rng.choice(MP3_BITRATES)))
        if self.rng.random() < 0.5:
            v, a = -v, -a
        return v.astype(np.float32), a.astype(np.float32), bool(v_lim or a_lim)

    def batch(self, size: int):
        ex = [self.example() for _ in range(size)]
        v = np.stack([e[0] for e in ex])
        a = np.stack([e[1] for e in ex])
        lim = np.array([e[2] for e in ex])
        return v, a, lim


def pan_stereo(x: np.ndarray, position: float) -> np.ndarray:
    """Stereo `x` (2, samples) panned to `position`: -1 hard left, 0 as it is, 1 hard right.

    Constant power: a centred (equal-channel) stem keeps its energy wherever it goes.
    """
    theta = (position + 1.0) * np.pi / 4
    return x * (np.sqrt(2) * np.array([[np.cos(theta)], [np.sin(theta)]], dtype=np.float32))


# Telephone, AM radio and speech codecs, old 11 kHz samplers, MIR-1K-like 16 kHz,
# half-rate files, broadcast: the rates low-band music reaches a user at.
BAND_LIMIT_RATES = (8000.0, 11025.0, 16000.0, 22050.0, 32000.0)


def room(x: np.ndarray, sample_rate: float, room_size: float = 0.8, damping: float = 0.5,
         wet_level: float = 0.5, dry_level: float = 0.6, width: float = 1.0) -> np.ndarray:
    """`x` (channels, samples) played in a reverberant room, as a concert recording hears a
    whole band: pedalboard's reverb, linear, so a sum of stems through it is the mixture
    through it. The length stays (the tail past the end is cut)."""
    rv = Reverb(room_size=room_size, damping=damping, wet_level=wet_level, dry_level=dry_level, width=width)
    return rv(np.ascontiguousarray(x, dtype=np.float32), sample_rate).astype(np.float32)


def band_limited(x: np.ndarray, sample_rate: float, rate: float) -> np.ndarray:
    """`x` (channels, samples) as if it had been stored at `rate` Hz: nothing above rate / 2.

    A brick wall on the whole clip's spectrum: exact, linear and without delay, and about
    25 times faster than pedalboard's windowed-sinc resampling down and up again."""
    x = np.asarray(x, dtype=np.float32)
    if rate >= sample_rate:
        return x
    spectrum = np.fft.rfft(x, axis=-1)
    spectrum[..., np.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate) > rate / 2] = 0
    return np.fft.irfft(spectrum, x.shape[-1], axis=-1).astype(np.float32)


def clipped(stems: np.ndarray, peak_db: float) -> np.ndarray:
    """`stems` (stems, ...) turned up until their sum peaks `peak_db` above full scale, then the
    sum clipped at +-1, as a loud master is.

    Clipping is not linear, so which stem owns the cut is a convention: here each sample of
    the sum is scaled by clip(m) / m and every stem with it (the stems share a per-sample
    gain), so the clipped stems still sum exactly to the clipped mixture."""
    stems = np.asarray(stems, dtype=np.float32)
    mix = stems.sum(axis=0)
    peak = float(np.abs(mix).max())
    if peak == 0:
        return stems
    scale = 10 ** (peak_db / 20) / peak
    gain = scale / np.maximum(np.abs(mix * scale), 1.0)  # clip(m * scale) / m, without dividing by m
    return (stems * gain).astype(np.float32)


def limited(stems: np.ndarray, sample_rate: float, drive_db: float, release_ms: float = 80.0,
            lookahead_ms: float = 10.0) -> np.ndarray:
    """`stems` (stems, channels, samples) turned up by `drive_db` and brought under full scale by a
    look-ahead peak limiter on their sum, as a loud master is (the smooth counterpart of `clipped`).

    The limiter's gain, shared by the channels and by the stems, is a smooth envelope rather than
    a per-sample cut, so every stem goes through the same time-varying gain and the limited stems
    sum exactly to the limited mixture. The gain starts to fall up to `lookahead_ms` before a
    peak and recovers with a `release_ms` time constant after it."""
    stems = np.asarray(stems, dtype=np.float32)
    drive = 10 ** (drive_db / 20)
    peak = np.abs(stems.sum(axis=0) * drive).max(axis=0)  # linked across channels
    need = 1.0 / np.maximum(peak, 1.0)
    half = max(1, int(round(lookahead_ms * 1e-3 * sample_rate / 2)))
    padded = np.pad(need, (2 * half, 2 * half), constant_values=1.0)
    # The least gain needed within half the look-ahead on either side, averaged over the same span: as
    # deep as the peak at each sample (every term of the average covers it), and without steps.
    floor = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).min(axis=-1)
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    gain = np.convolve(floor, kernel, mode="valid")
    rise = 1.0 - np.exp(-1.0 / (release_ms * 1e-3 * sample_rate))
    out, g = np.empty_like(gain), 1.0
    for i, target in enumerate(gain):  # release: the gain recovers slowly after a peak
        g = min(target, g + (1.0 - g) * rise)
        out[i] = g
    return (stems * (drive * out).astype(np.float32)).astype(np.float32)


MP3_BITRATES = (64, 96, 128, 160, 192, 256, 320)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def mp3_coded(vocals: np.ndarray, accompaniment: np.ndarray, sample_rate: int,
              kbps: int) -> tuple[np.ndarray, np.ndarray]:
    """The song `vocals` + `accompaniment` (each (channels, samples)) as an MP3 file at `kbps`
    kbit/s holds it: written by LAME (pedalboard.io) and read back by soundfile, which trims
    the encoder's delay and padding as acapella's own reader does, so nothing shifts.

    Coding is not linear and a song is coded whole, so its error needs an owner: the vocals
    stay the song's own (what separating an MP3 should give back) and the accompaniment is the
    coded mixture minus them, so the stems still sum to what the network hears."""
    if int(sample_rate) not in MP3_RATES:
        raise ValueError(f"MP3 cannot hold {sample_rate} Hz: use one of {', '.join(map(str, MP3_RATES))}")
    vocals = np.asarray(vocals, dtype=np.float32)
    mix = vocals + np.asarray(accompaniment, dtype=np.float32)
    buffer = io.BytesIO()
    with AudioFile(buffer, "w", sample_rate, mix.shape[0], format="mp3", quality=int(kbps)) as f:
        f.write(mix)
    buffer.seek(0)
    coded, _ = sf.read(buffer, dtype="float32", always_2d=True)
    coded = coded.T[:, :mix.shape[1]]
    coded = np.pad(coded, ((0, 0), (0, mix.shape[1] - coded.shape[1])))
    return vocals, (coded - vocals).astype(np.float32)


def default_data_root() -> Path:
    """$ACAPELLA_DATA, else ../shared/data beside the repository the command runs in."""
    if "ACAPELLA_DATA" in os.environ:
        return Path(os.environ["ACAPELLA_DATA"])
    # An installed (non-editable) package lives in site-packages, far from the data,
    # so the working directory (the repository root) comes first.
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base / ".." / "shared" / "data").is_dir():
            return base / ".." / "shared" / "data"
    return Path("..") / "shared" / "data"
