"""Input checks and array layouts: how audio arrays are read and given back.

`Separator`, the pipelines and the effects all take their input through here:
`to_channels_first` and `Layout` for shapes and sample types, `check_samples`
for levels, `check_rate` for the accepted sample rates.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

#: The accepted sample rates, in Hz: from below telephone audio to eight times 96 kHz.
MIN_RATE, MAX_RATE = 1_000, 768_000

#: A float input peaking above this (+24 dB over full scale) gets a warning: its
#: scale is most likely wrong, and the network hears it as something else.
LOUD_PEAK = 16.0
#: A float input peaking above this is refused: near the float32 limit (3.4e38) the STFT
#: and the network overflow to NaN and infinity. Any integer range as floats stays below it.
MAX_PEAK = 1e30


def check_samples(x: np.ndarray) -> str | None:
    """Refuses non-finite or absurdly large samples; returns a warning for a wrongly scaled signal.

    The one check of sample values: NaN or infinite samples, or peaks above
    `MAX_PEAK`, raise ValueError; a peak above `LOUD_PEAK` returns the one-line
    warning to give (None otherwise).

    Example::

        >>> check_samples(np.array([[0.5, -0.25]], np.float32)) is None
        True
        >>> print(check_samples(np.array([[20000.0]], np.float32)))  # doctest: +ELLIPSIS
        audio peaks at 2e+04 (+86 dB over full scale): ... int16 range ...
    """
    if not x.size:
        return None
    peak = float(np.max(np.abs(x)))
    if not math.isfinite(peak):
        raise ValueError("audio contains NaN or infinite samples: clean or clip the input first")
    if peak > MAX_PEAK:
        raise ValueError(f"audio peaks at {peak:.3g}, beyond what float32 separation can hold "
                         f"(at most {MAX_PEAK:g}): scale it to full scale (peaks near 1.0) first")
    if peak <= LOUD_PEAK:
        return None
    cause = ("int16 range (up to 32768)" if peak <= 32768 * 1.01 else
             "int24 range (up to 8388608)" if peak <= 8388608 * 1.01 else "int32 range (up to 2147483648)")
    return (f"audio peaks at {peak:.3g} ({20 * math.log10(peak):+.0f} dB over full scale): float samples are "
            f"taken as -1..1, and these look like integer samples in the {cause} given as floats; "
            "divide them by that full scale (or pass the integer array itself)")


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
    return np.ascontiguousarray(x, dtype=np.float32), layout


def check_rate(sample_rate: float) -> int:
    """A whole sample rate from `MIN_RATE` to `MAX_RATE` Hz, as int."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise ValueError(f"sample_rate must be a number, got {sample_rate!r}") from None
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    if rate != int(rate):
        raise ValueError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"sample_rate must be from {MIN_RATE} to {MAX_RATE} Hz, got {sample_rate!r}: "
                         "resample the audio into that range first")
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
