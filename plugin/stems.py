"""The stems acapella makes, their names, and the one rule that makes the accompaniment.

The network estimates the vocals only; the accompaniment is the mixture minus
the vocals, so the stems always sum to the input. `split` is the one place
that subtraction happens: the `Separator`, the effects and the file writer all
take their stems from it.
"""
from __future__ import annotations

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
