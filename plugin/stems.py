"""The stems acapella makes, their names, and the one rule that makes the accompaniment.

The network estimates the vocals only; the accompaniment is the mixture minus
the vocals, so the stems always sum to the input. `split` is the one place
that subtraction happens, and `StemStream` the one place a stream's mixture is
held until its vocals are ready: the `Separator`, the effects and the file
writer all take their stems from them.
"""
from __future__ import annotations

from collections import deque
from typing import Iterable

import numpy as np

#: Every stem, in the order they are written and listed.
STEMS: tuple[str, ...] = ("vocals", "accompaniment")


def parse_stems(stems: Iterable[str] | str) -> tuple[str, ...]:
    """Stem names checked and without repeats, from a list or a comma-separated string.

    Example::

        >>> parse_stems("vocals, accompaniment,vocals")
        ('vocals', 'accompaniment')
        >>> parse_stems(["drums"])
        Traceback (most recent call last):
        ...
        ValueError: unknown stem 'drums': choose from vocals, accompaniment
    """
    if isinstance(stems, str):
        stems = [s.strip() for s in stems.split(",") if s.strip()]
    stems = tuple(dict.fromkeys(stems))
    bad = [s for s in stems if s not in STEMS]
    if bad or not stems:
        raise ValueError(f"unknown stem {bad[0]!r}: choose from {', '.join(STEMS)}" if bad
                         else f"no stems chosen: choose from {', '.join(STEMS)}")
    return stems


def split(mixture: np.ndarray, vocals: np.ndarray, stems: Iterable[str] = STEMS) -> dict[str, np.ndarray]:
    """``{stem: samples}`` of the chosen `stems` from aligned mixture and vocals samples.

    The accompaniment is ``mixture - vocals``, computed only when asked for.

    Example::

        >>> x, v = np.ones((2, 3), np.float32), np.full((2, 3), 0.25, np.float32)
        >>> split(x, v, ["accompaniment"])["accompaniment"].tolist()
        [[0.75, 0.75, 0.75], [0.75, 0.75, 0.75]]
    """
    out = {}
    for stem in stems:
        out[stem] = vocals if stem == "vocals" else mixture - vocals
    return out


class Fifo:
    """(channels, n) samples waiting to go out; a queue of blocks, so nothing is copied on push."""

    def __init__(self, channels: int):
        self.channels, self.size, self.blocks = channels, 0, deque()

    def push(self, x: np.ndarray) -> None:
        if x.shape[1]:
            self.blocks.append(x)
            self.size += x.shape[1]

    def take(self, n: int) -> np.ndarray:
        """The first `n` samples held (all of them if fewer)."""
        n = min(n, self.size)
        parts = []
        left = n
        while left:
            b = self.blocks[0]
            if b.shape[1] <= left:
                parts.append(self.blocks.popleft())
                left -= b.shape[1]
            else:
                parts.append(b[:, :left])
                self.blocks[0] = b[:, left:]  # a view: held memory stays bounded by the block
                left = 0
        self.size -= n
        if not parts:
            return np.zeros((self.channels, 0), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


class StemStream:
    """Aligned stems of a stream: mixture blocks in, ``{stem: samples}`` out.

    `pipeline` makes the vocals (`acapella.pipeline.Pipeline`, from
    `Separator.pipeline`); the mixture is held until its vocals come out, so
    that each output block of every stem covers the same samples. `push`
    returns the stems of the samples that became final (possibly none),
    `finish` the rest: in all, as many samples as went in.
    """

    def __init__(self, pipeline, stems: Iterable[str] = STEMS):
        self.pipeline, self.stems = pipeline, parse_stems(stems)
        self.channels = pipeline.channels
        self._mixture = Fifo(self.channels)

    def push(self, x: np.ndarray) -> dict[str, np.ndarray]:
        vocals = self.pipeline.push(x)  # checks the block first
        self._mixture.push(np.array(x, dtype=np.float32))  # a copy: the caller may reuse its buffer
        return split(self._mixture.take(vocals.shape[1]), vocals, self.stems)

    def finish(self) -> dict[str, np.ndarray]:
        vocals = self.pipeline.finish()
        return split(self._mixture.take(vocals.shape[1]), vocals, self.stems)

    def whole(self, x: np.ndarray, block: int) -> dict[str, np.ndarray]:
        """The stems of a whole (channels, n) signal, pushed in blocks of `block` samples, then finished."""
        parts = [self.push(x[:, i:i + block]) for i in range(0, x.shape[1], block)]
        parts.append(self.finish())
        return {s: np.concatenate([p[s] for p in parts], axis=1) for s in self.stems}
