"""One stream's way through the engine, at its own rate and channel count.

Channels are grouped into the model's channels (`channel_groups`), a panned
voice is turned to the centre (`acapella.panning`), other rates go to the
model's rate and back (`acapella.resample`), and the STFT mask engine
(`acapella.stream`) makes the vocals in between.
"""
from __future__ import annotations

import warnings

import numpy as np

from acapella import panning, resample
from acapella.layout import check_samples
from acapella.stream import SpectralStream


def channel_groups(channels: int, per: int, per_channel: bool = False) -> list[int]:
    """Which input channel feeds each of the model's channels, group after group.

    Channels go in groups of the model's `per` channels, in order; mono is
    doubled, and so is an odd last channel. With `per_channel` each channel is
    doubled into a group of its own.

    Example::

        >>> channel_groups(3, 2), channel_groups(2, 2, per_channel=True), channel_groups(2, 1)
        ([0, 1, 2, 2], [0, 0, 1, 1], [0, 1])
    """
    if per_channel:
        return [c for c in range(channels) for _ in range(per)]
    groups = -(-channels // per)
    return [min(g * per + j, channels - 1) for g in range(groups) for j in range(per)]


class Pipeline:
    """Streaming vocals for one stream at its own rate and channel count.

    `push` takes (channels, n) float32 blocks and returns the vocal samples that
    became final, in order from the first sample; `finish` returns the rest, so
    that as many samples come out as went in. `window_frames` is the network's
    window in STFT frames (see `acapella.stream`); `post_step` is passed on to it.
    Every block's samples are checked (`acapella.layout.check_samples`); the
    first wrongly scaled one gives a warning, unless `warn_levels` is False.
    A stereo stream with a `pan` other than 0 is turned so that a voice there
    sits in the centre, and its vocals turned back.
    """

    def __init__(self, model, sample_rate: int, channels: int, window_frames: int,
                 future_frames: int | None = None, per_channel: bool = False, pan: float = 0.0,
                 post_step=None, warn_levels: bool = True):
        self.model, self.rate, self.channels = model, sample_rate, channels
        per = model.channels
        route = channel_groups(channels, per, per_channel)
        self.pan = float(pan) if channels == 2 and per == 2 and not per_channel else 0.0
        # The model's channels are a linear map of the input's (copies, or a turn of the
        # stereo field); the vocals come back through its inverse (copies averaged).
        self._scatter = np.zeros((len(route), channels), dtype=np.float32)
        self._scatter[np.arange(len(route)), route] = 1.0
        self._gather = self._scatter.T / self._scatter.sum(axis=0)[:, None]
        if self.pan:
            self._scatter = panning.rotation(self.pan)
            self._gather = self._scatter.T.copy()
        self._direct = route == list(range(channels)) and not self.pan  # stereo as it is: no copies
        self.resample = sample_rate != model.sample_rate
        delay = 0.0
        if self.resample:
            delay = resample.round_trip_delay(sample_rate, model.sample_rate) * model.sample_rate / sample_rate
            self._tail = resample.tail(sample_rate, model.sample_rate)
        self.stream = SpectralStream(model, len(route), window_frames, future_frames, delay=delay,
                                     post_step=post_step)
        self._warned = not warn_levels  # one warning per stream for a wrongly scaled input
        self.reset()

    @property
    def latency(self) -> int:
        """Worst-case input samples between a sample going in and its vocals coming out."""
        lat = self.stream.latency
        if self.resample:
            lat = lat * self.rate / self.model.sample_rate + resample.round_trip_latency(self.rate,
                                                                                        self.model.sample_rate)
        return int(np.ceil(lat))

    def reset(self) -> None:
        self.stream.reset()
        self.pushed = self.emitted = 0
        if self.resample:
            n = self._scatter.shape[0]
            self._there = resample.resampler(self.rate, self.model.sample_rate, n)
            self._back = resample.resampler(self.model.sample_rate, self.rate, n)

    def _check(self, x: np.ndarray) -> None:
        if getattr(x, "ndim", 0) != 2 or x.shape[0] != self.channels:
            raise ValueError(f"this pipeline takes ({self.channels}, n) blocks, got shape {getattr(x, 'shape', None)}")
        warning = check_samples(x)
        if warning and not self._warned:
            self._warned = True
            warnings.warn(warning, stacklevel=4)

    def _out(self, v: np.ndarray) -> np.ndarray:
        if self.resample and v.shape[1]:
            v = self._back.process(np.ascontiguousarray(v))
        return self._regroup(v)

    def _regroup(self, v: np.ndarray) -> np.ndarray:
        """The model's channel groups back to the input's channels (doubled ones averaged)."""
        if v.size and not np.isfinite(v).all():
            raise ValueError("the separation overflowed to NaN or infinite samples: "
                             "scale the input to full scale (peaks near 1.0) first")
        if self._direct:
            return v
        return self._gather @ v if v.shape[1] else np.zeros((self.channels, 0), np.float32)

    def _into_model(self, x: np.ndarray) -> np.ndarray:
        """Input channels -> the model's channel groups, at the model's rate (streaming)."""
        if not self._direct:
            x = self._scatter @ x
        if self.resample:
            x = self._there.process(np.ascontiguousarray(x))
        return x

    def push(self, x: np.ndarray) -> np.ndarray:
        """(channels, n) float32 in; the vocal samples that became final out."""
        self._check(x)
        self.pushed += x.shape[1]
        out = self._out(self.stream.push(self._into_model(x)))
        self.emitted += out.shape[1]
        return out

    def finish(self) -> np.ndarray:
        """The remaining vocals, so that the total output equals the total input."""
        if self.resample:
            # Silence after the end, as a stream that is flushed with silence has, so that the
            # resampler's ringing past the last sample reaches the network in both cases and
            # one-shot output equals streamed output.
            tail = np.zeros((self._scatter.shape[0], self._tail), np.float32)
            head = [self.stream.push(self._there.process(tail)), self.stream.push(self._there.process(None))]
            out = self._out(np.concatenate(head + [self.stream.finish()], axis=1))
            out = np.concatenate([out, self._regroup(self._back.process(None))], axis=1)
        else:
            out = self._out(self.stream.finish())
        want = self.pushed - self.emitted
        # The resamplers' rounding can leave a sample or two over or under.
        if out.shape[1] < want:
            out = np.concatenate([out, np.zeros((self.channels, want - out.shape[1]), np.float32)], axis=1)
        out = out[:, :want]
        self.emitted += out.shape[1]
        return out

    def vocal_energy(self, x: np.ndarray) -> np.ndarray:
        """Energy of the vocals of a short (channels, n) signal, per input channel.

        The whole signal is one network window (no look-ahead beyond its ends),
        which is all that finding where a voice sits needs (`acapella.panning`).
        The pipeline's stream is left as it was.
        """
        self._check(x)
        if not self._direct:
            x = self._scatter @ x
        if self.resample:
            x = resample.resample(x, self.rate, self.model.sample_rate)
        energy = self.stream.vocal_energy(x)
        return self._scatter.T @ energy if not self._direct else energy
