"""Resampling to the model's rate and back, with the delay that the round trip adds.

pedalboard's `StreamResampler` does the work. It holds back a window of
samples at its input rate, which it reports as ``input_latency``; the round trip
also shifts the signal by a fraction of a sample, which is measured once per
pair of rates (`round_trip_delay`) and undone inside the STFT engine, so that
vocals resampled there and back stay aligned with the mixture they are
subtracted from.
"""
from __future__ import annotations

import math
import threading

import numpy as np
from pedalboard.io import StreamResampler

_delays: dict[tuple[int, int], float] = {}
_delays_lock = threading.Lock()


def resampler(source_rate: float, target_rate: float, channels: int, quality=None) -> StreamResampler:
    """pedalboard's `StreamResampler`, told its blocks are (channels, samples).

    ``quality`` is a ``pedalboard.Resample.Quality`` (pedalboard's default when None). It guesses a block's layout from its shape until it has seen one, and reads a
    first block of (channels, n <= channels) the wrong way round; an empty block
    sets the layout and changes nothing else.
    """
    r = (StreamResampler(source_rate, target_rate, channels) if quality is None
         else StreamResampler(source_rate, target_rate, channels, quality))
    r.process(np.zeros((channels, 0), np.float32))
    return r


def window(source_rate: int, target_rate: int) -> float:
    """Samples, at `source_rate`, that pedalboard's resampler holds back (its ``input_latency``)."""
    return float(StreamResampler(source_rate, target_rate, 1).input_latency)


def resample(x: np.ndarray, source_rate: float, target_rate: float, quality=None) -> np.ndarray:
    """A whole (channels, n) signal resampled, its end flushed out."""
    r = resampler(source_rate, target_rate, x.shape[0], quality)
    return np.concatenate([r.process(np.ascontiguousarray(x)), r.process(None)], axis=1)


def round_trip_latency(rate: int, model_rate: int) -> int:
    """Worst-case samples at `rate` that both resamplers, there and back, hold back together."""
    there, back = window(rate, model_rate), window(model_rate, rate)
    # The second window is at the model's rate; a few samples more for the rounding of both.
    return int(math.ceil(2 * max(there, back) * max(1.0, rate / model_rate))) + 4


def tail(rate: int, model_rate: int) -> int:
    """Samples of silence at `rate` that carry both resamplers' filters past the end, with room to spare."""
    there, back = window(rate, model_rate), window(model_rate, rate)
    return int(math.ceil(8 * (there + back * rate / model_rate)))


def round_trip_delay(rate: int, model_rate: int) -> float:
    """Delay, in samples at `rate`, of pedalboard's resampler there and back.

    It is a fixed fraction of a sample that depends only on the two rates.
    Measured once per pair from the phase of a tone well inside both bands.
    """
    key = (rate, model_rate)
    with _delays_lock:
        if key not in _delays:
            freq = min(1000.0, min(rate, model_rate) / 8)
            n = rate  # one second
            t = np.arange(n) / rate
            tone = np.sin(2 * np.pi * freq * t).astype(np.float32)[None]
            y = resample(resample(tone, rate, model_rate), model_rate, rate)[0]
            s = slice(n // 4, min(y.size, n) - n // 4)
            phase = np.angle(np.sum(y[s] * np.exp(-2j * np.pi * freq * t[s])) * 1j)
            _delays[key] = float(-phase / (2 * np.pi * freq) * rate)
        return _delays[key]
