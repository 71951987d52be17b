"""The dynamic mixer: training examples drawn fresh from the pools, with the mixture always the
sum of the very stems used as targets.

Each example is vocals of one clip over an accompaniment from another (or one remixed from the
drums, bass and other of three songs), or, with probability `paired`, one real song's own stems,
aligned; with random gains, offsets, channel swaps and the augmentations an `Augmentation`
switches on: speed changes, vocal effects, layers, reversal, panning, rooms and low rates,
clipping, quiet levels and MP3 coding.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from pedalboard import Chorus, Compressor, Delay, Pedalboard, Resample, Reverb
from pedalboard.io import StreamResampler

from acapella.model.corpora import Pool, Pools
from acapella.model.degradations import (BAND_LIMIT_RATES, MP3_BITRATES, band_limited, clipped, mp3_coded,
                                         pan_stereo, room)


def _share(help_text: str, default: float = 0.0):
    return field(default=default, metadata={"help": help_text, "share": True})


@dataclass(frozen=True)
class Augmentation:
    """How often the mixer applies each augmentation (a probability per example or per clip), and
    the range of its speed changes. One definition for the mixer, the training options and the
    record of a run (``train.json``). All off by default: a plain dynamic mix."""

    varispeed: float = _share("probability that a stem is sped up or slowed down (pitch and tempo together)")
    semitones: float = field(default=2.0, metadata={"help": "largest varispeed shift, in semitones either way"})
    mono: float = _share("probability that a stereo example is made mono (both channels equal), as mono songs "
                         "reach the model")
    effects: float = _share("probability that the vocals get a random reverb (sometimes delay, chorus, compression)")
    paired: float = _share("probability that an example is one real song's own vocals and accompaniment, aligned, "
                           "rather than a mix of two songs")
    layers: float = _share("probability that each stem of a mix of two songs gets a second clip of its kind under it "
                           "(-12 to -3 dB): backing voices under the vocals, a second band under the accompaniment")
    reverse: float = _share("probability that each clip drawn (both stems alike in a real song) plays backwards")
    quiet: float = _share("probability that a whole example (both stems) is turned down by 6 to 24 dB, as quiet "
                          "recordings are")
    pan: float = _share("probability that the vocals are panned anywhere from hard left to hard right, as on early "
                        "stereo records")
    degrade: float = _share("probability that a whole example (both stems) is heard in a random room or through a "
                            "lower sample rate (8 to 32 kHz), as live and old recordings are")
    clip: float = _share("probability that a whole example is turned up until its peak is 0 to 12 dB over full "
                         "scale and clipped there, as loud masters are (both stems share the cut)")
    mp3: float = _share("probability that a whole example is written as an MP3 at 64 to 320 kbit/s and read back, "
                        "as most songs people separate are (the vocals stay the song's own, the accompaniment "
                        "takes the coding error)")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, share_type) -> None:
        """One ``--NAME`` option per field; `share_type` parses (and checks) the probabilities."""
        for f in fields(cls):
            parser.add_argument(f"--{f.name}", type=share_type if f.metadata.get("share") else float,
                                default=f.default, help=f.metadata["help"])

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Augmentation":
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    def as_dict(self) -> dict:
        return asdict(self)


class Mixer:
    """Draws (mixture, vocals, accompaniment, limited) examples of a fixed length."""

    # How often each corpus is drawn, relative, within the pool being drawn from. The stems
    # folders' corpora come first; the rest are groups of a corpus cache (`add_corpus`):
    # game soundtracks, rendered MIDI backings, and the widened voices.
    GROUP_WEIGHTS = {"musdb": 0.5, "pjs": 0.2, "mir1k": 0.3}
    CACHE_WEIGHTS = {"game": 0.4, "pop909": 0.3, "music21": 0.1, "groove": 0.1,
                     "musdb-wide": 0.3, "pjs-wide": 0.15, "mir1k-wide": 0.2, "eif": 0.03, "eif-wide": 0.03}

    def __init__(self, pools: Pools, length: int, channels: int, seed: int, augment: Augmentation | None = None,
                 weights: dict | None = None, sample_rate: int = 44100):
        self.p, self.length, self.channels = pools, length, channels
        self.weights = dict(self.GROUP_WEIGHTS, **self.CACHE_WEIGHTS, **(weights or {}))
        self.aug = augment or Augmentation()
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
        if self.rng.random() >= self.aug.varispeed:
            return 1.0
        # Slowing a band-limited clip would pull its empty top band below the loss
        # cutoff and teach the network that voice never reaches there.
        return 2.0 ** (self.rng.uniform(0.0 if limited else -self.aug.semitones, self.aug.semitones) / 12)

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
        harmony stay while the order in time is new. Measured (docs/experiments.md): it
        lowered the produced MUSDB songs, so the shipped model's recipe leaves it at 0."""
        return bool(self.aug.reverse) and self.rng.random() < self.aug.reverse

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
        if not self.aug.layers or self.rng.random() >= self.aug.layers:
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
        if self.aug.paired and self.rng.random() < self.aug.paired:
            v, a, v_lim = self._song()
            a_lim = v_lim
            if self.aug.effects and self.rng.random() < self.aug.effects:
                v = self._vocal_effects(v)
        else:
            r = self.rng.random()
            v, v_lim = self._layered(self.p.vocals, *self._pick(self.p.vocals))
            if self.aug.effects and self.rng.random() < self.aug.effects:
                v = self._vocal_effects(v)
            if r < 0.4 and self.p.drums.clips:
                parts = [self._pick(pool)[0] * self._db(-6, 3) for pool in (self.p.drums, self.p.bass, self.p.other)]
                a, a_lim = sum(parts), False
            else:
                a, a_lim = self._pick(self.p.accompaniment)
            a, a_lim = self._layered(self.p.accompaniment, a, a_lim)
        v = v * self._db(-9, 3)
        a = a * self._db(-6, 3)
        if self.aug.pan and self.channels == 2 and self.rng.random() < self.aug.pan:
            # Early stereo records (and some mixes since) put the voice hard to one side,
            # while every stem here sings from the centre: a network that learns "only the
            # centre sings" hands a panned voice to the accompaniment.
            v = pan_stereo(v, self.rng.uniform(-1.0, 1.0))
        if self.rng.random() < 0.05:
            v = v * 0.0  # instrumental stretches: the mask must stay shut
        if self.aug.mono and self.channels == 2 and self.rng.random() < self.aug.mono:
            # Mono songs reach a stereo model as two equal channels: no side signal at all.
            v = np.repeat(v.mean(axis=0, keepdims=True), 2, axis=0)
            a = np.repeat(a.mean(axis=0, keepdims=True), 2, axis=0)
        if self.aug.degrade and self.rng.random() < self.aug.degrade:
            v, a = self._degraded(v, a)
        if self.aug.clip and self.rng.random() < self.aug.clip:
            # Loud masters are clipped: the mixture's peaks are cut, so the stems are cut with them.
            v, a = clipped(np.stack([v, a]), self.rng.uniform(0.0, 12.0))
        if self.aug.quiet and self.rng.random() < self.aug.quiet:
            # Home recordings and unmastered mixes sit far below a mastered song, and the
            # network reads log1p magnitudes, which change shape with level, not only offset.
            g = self._db(-24, -6)
            v, a = v * g, a * g
        if self.aug.mp3 and self.rng.random() < self.aug.mp3:
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
