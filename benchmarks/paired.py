"""Paired statistics of two `evaluate_folder` results, song by song, for `quality.py --against`."""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np


def paired_change(results: Mapping, baseline: Mapping) -> dict:
    """How each figure moved from ``baseline`` to ``results``, song by song.

    Both are :func:`evaluate_folder` results. A median over a dozen songs can
    move by tenths of a dB when a single song crosses it, so a comparison of two
    models is better read from the per-song differences: for each stem and
    figure, their ``mean``, its standard error ``stderr`` (0 for a single song),
    how many songs got ``better`` and how many ``songs`` both scored (non-finite
    figures are left out).

    Example::

        >>> a = {"songs": {"x": {"vocals": {"sdr_v4": 5.0}}, "y": {"vocals": {"sdr_v4": 3.0}}}}
        >>> b = {"songs": {"x": {"vocals": {"sdr_v4": 4.0}}, "y": {"vocals": {"sdr_v4": 3.5}}}}
        >>> paired_change(a, b)["vocals"]["sdr_v4"]
        {'mean': 0.25, 'stderr': 0.75, 'better': 1, 'songs': 2}
    """
    out: dict = {}
    common = sorted(set(results["songs"]) & set(baseline["songs"]))
    for song in common:
        for stem, figures in results["songs"][song].items():
            if not isinstance(figures, Mapping):
                continue
            for name, value in figures.items():
                ref = baseline["songs"][song].get(stem, {}).get(name)
                if ref is not None and value is not None and math.isfinite(value) and math.isfinite(ref):
                    out.setdefault(stem, {}).setdefault(name, []).append(value - ref)
    for stem, figures in out.items():
        for name, diffs in figures.items():
            d = np.asarray(diffs, dtype=np.float64)
            stderr = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0
            figures[name] = {"mean": round(float(d.mean()), 4), "stderr": round(stderr, 4),
                             "better": int((d > 0).sum()), "songs": int(d.size)}
    return out
