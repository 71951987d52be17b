"""Input checks and array layouts: how audio arrays are read and given back, shared by `Separator` and the effects."""
from __future__ import annotations

import math
import numbers

import numpy as np


class Layout:
    """Remembers how an input array was laid out, to give outputs the same shape."""

    def __init__(self, ndim: int, channels_last: bool):
        self.ndim, self.channels_last = ndim, channels_last

    def restore(self, x: np.ndarray) -> np.ndarray:
        """(channels, samples) float32 -> the input's layout."""
        if self.ndim == 1:
            return np.ascontiguousarray(x[0])
        return np.ascontiguousarray(x.T) if self.channels_last else np.ascontiguousarray(x)


def to_channels_first(audio: np.ndarray) -> tuple[np.ndarray, Layout]:
    """Any layout pedalboard accepts -> ((channels, samples) float32, layout).

    2-D arrays: the smaller dimension is channels (a zero-length one is always
    samples); a square array is read as (channels, samples), as pedalboard does.
    Integer samples are scaled to [-1, 1).
    """
    a = np.asarray(audio)
    if a.ndim not in (1, 2):
        raise ValueError(f"audio must be 1-D or 2-D (channels, samples) or (samples, channels), got shape {a.shape}")
    if a.dtype.kind == "f":
        x = a.astype(np.float32, copy=False)
    elif a.dtype in (np.int16, np.int32):
        x = a.astype(np.float32) / float(2 ** (8 * a.dtype.itemsize - 1))
    elif a.dtype == np.uint8:
        x = (a.astype(np.float32) - 128.0) / 128.0
    else:
        raise ValueError(f"unsupported sample type {a.dtype}: use float32, float64, int16, int32 or uint8")
    if a.ndim == 1:
        x, layout = x[None, :], Layout(1, False)
    else:
        rows, cols = a.shape
        channels_last = rows > cols and cols > 0 or rows == 0
        if (cols if channels_last else rows) == 0:
            raise ValueError(f"audio with shape {a.shape} has no channels")
        x, layout = (x.T if channels_last else x), Layout(2, channels_last)
    if x.size and not np.isfinite(x).all():
        raise ValueError("audio contains NaN or infinite samples: clean or clip the input first")
    return np.ascontiguousarray(x, dtype=np.float32), layout


def check_rate(sample_rate: float) -> int:
    """A positive, whole sample rate as int."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise ValueError(f"sample_rate must be a number, got {sample_rate!r}") from None
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    if rate != int(rate):
        raise ValueError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}")
    return int(rate)


def check_seconds(name: str, value, zero: bool = False) -> float:
    """A positive (or, with `zero`, non-negative), finite number of seconds as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'}, finite number of seconds, "
                         f"got {value!r}")
    return float(value)


def check_count(name: str, value) -> int:
    """A whole number of at least 1 as int (threads, channels)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)
