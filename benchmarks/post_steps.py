"""Candidate post-steps on the vocals mask, for `quality.py --post STEP`.

None of these is in the engine; this file exists to measure whether one should be.
A STEP is one of:

- ``wiener=N``: N iterations of the multichannel Wiener filter's EM (as in norbert
  and open-unmix's ``filtering.py``): each stem's power spectrogram and its 2x2
  spatial covariance per bin, estimated over the chunk (``wiener=N:K`` over the
  K frames on each side of each frame instead), give each stem a complex 2x2
  filter on the stereo mixture. Stereo models only.
- ``temperature=P``: the mask ``m`` becomes ``m^P / (m^P + (1 - m)^P)``, the same
  as multiplying the network's last logit by P (P < 1 softens, P > 1 sharpens).
- ``swap``: the mask is averaged with the mask of the channel-swapped mixture,
  swapped back (twice the network work).
- ``shift=K``: the mask is averaged with the mask of the mixture delayed by K
  frames, moved back (twice the network work): the network's stride-32 grid in
  time then falls elsewhere on the song, as demucs' ``shifts`` do in samples.

The accompaniment stays the mixture minus the vocals, so stems still sum to the input.
"""
from __future__ import annotations

import math

import numpy as np

from acapella import Separator

_EPS = 1e-10


def _frame_sums(a: np.ndarray, span: int | None) -> np.ndarray:
    """Sums over frames (axis 0): over all of them (kept as one row), or over the `span` frames either side of each."""
    if span is None:
        return np.sum(a, axis=0, keepdims=True)
    c = np.concatenate([np.zeros_like(a[:1]), np.cumsum(a, axis=0)])
    i = np.arange(a.shape[0])
    return c[np.minimum(i + span + 1, a.shape[0])] - c[np.maximum(i - span, 0)]


def multichannel_wiener(mix: np.ndarray, mask: np.ndarray, iterations: int, span: int | None = None) -> np.ndarray:
    """Vocal spectra (2, T, F) from a stereo mixture's spectra and a vocals mask, after EM iterations."""
    mix = mix.astype(np.complex128)  # a near-singular 2x2 (mono, or one-sided panning) needs the precision
    stems = [mask * mix, (1 - mask) * mix]
    for _ in range(iterations):
        power, cov = [], []
        for y in stems:
            p0, p1 = np.abs(y[0]) ** 2, np.abs(y[1]) ** 2
            v = 0.5 * (p0 + p1)
            norm = _frame_sums(v, span) + _EPS
            power.append(v)
            cov.append((_frame_sums(p0, span) / norm, _frame_sums(y[0] * np.conj(y[1]), span) / norm,
                        _frame_sums(p1, span) / norm))
        c00 = sum(v * r[0] for v, r in zip(power, cov))
        c01 = sum(v * r[1] for v, r in zip(power, cov))
        c11 = sum(v * r[2] for v, r in zip(power, cov))
        load = 1e-6 * (c00 + c11) + _EPS  # diagonal loading, relative, so mono input stays invertible
        c00, c11 = c00 + load, c11 + load
        det = c00 * c11 - np.abs(c01) ** 2
        i00, i01, i11 = c11 / det, -c01 / det, c00 / det  # inverse of the mixture covariance
        v, (r00, r01, r11) = power[0], cov[0]
        a00, a01, a11 = v * r00, v * r01, v * r11
        g00 = a00 * i00 + a01 * np.conj(i01)
        g01 = a00 * i01 + a01 * i11
        g10 = np.conj(a01) * i00 + a11 * np.conj(i01)
        g11 = np.conj(a01) * i01 + a11 * i11
        vocals = np.stack([g00 * mix[0] + g01 * mix[1], g10 * mix[0] + g11 * mix[1]])
        stems = [vocals, mix - vocals]
    return stems[0].astype(np.complex64)


def wiener_step(iterations: int, span: int | None = None):
    """A `Separator` post-step: the multichannel Wiener filter on each stereo group of the window."""

    def step(mask: np.ndarray, spectra: np.ndarray) -> np.ndarray:
        out = np.empty_like(spectra)
        for g in range(0, spectra.shape[0], 2):
            out[g:g + 2] = multichannel_wiener(spectra[g:g + 2], mask[g:g + 2], iterations, span)
        return out

    return step


def temperature_step(power: float):
    """A `Separator` post-step: the mask sharpened (P > 1) or softened (P < 1) as a logit times P."""

    def step(mask: np.ndarray, spectra: np.ndarray) -> np.ndarray:
        a, b = mask ** power, (1 - mask) ** power
        return (a / (a + b + _EPS)) * spectra

    return step


class _SwapAveraged:
    """A model whose mask is the mean of its own and the channel-swapped input's, swapped back."""

    def __init__(self, model):
        self.inner = model

    def __getattr__(self, name):
        return getattr(self.__dict__["inner"], name)

    def mask(self, spectrum: np.ndarray) -> np.ndarray:
        c = self.inner.channels
        order = np.arange(spectrum.shape[0]).reshape(-1, c)[:, ::-1].ravel()
        return 0.5 * (self.inner.mask(spectrum) + self.inner.mask(spectrum[order])[order])


class _ShiftAveraged(_SwapAveraged):
    """A model whose mask is the mean of its own and that of the input delayed by `frames`, moved back."""

    def __init__(self, model, frames: int):
        super().__init__(model)
        self.frames = frames

    def mask(self, spectrum: np.ndarray) -> np.ndarray:
        k = self.frames
        own = self.inner.mask(spectrum)
        if spectrum.shape[1] <= k:
            return own
        delayed = np.zeros_like(spectrum)
        delayed[:, k:] = spectrum[:, :-k]
        # The last k frames of a window have no delayed estimate; they lie in the receptive
        # field around the kept centre (context frames), so the engine drops them.
        out = own.copy()
        out[:, :-k] = 0.5 * (own[:, :-k] + self.inner.mask(delayed)[:, k:])
        return out


def separator(step: str, model: str = "default", threads: int | None = None) -> Separator:
    """A `Separator` whose engine runs post-step `step` (see the module docstring)."""
    name, _, value = step.partition("=")
    sep = Separator(model=model, threads=threads)
    if name == "swap" and not value:
        sep.model = _SwapAveraged(sep.model)
        return sep
    if name == "shift":
        try:
            frames = int(value)
        except ValueError:
            frames = 0
        if not 0 < frames < sep.model.context:
            raise ValueError(f"bad post-step {step!r}: give shift=K with 0 < K < {sep.model.context} frames")
        sep.model = _ShiftAveraged(sep.model, frames)
        return sep
    try:
        if name == "wiener":
            iters, _, span = value.partition(":")
            settings = {"iterations": int(iters), "span": int(span) if span else None}
        elif name == "temperature":
            settings = {"power": float(value)}
        else:
            raise ValueError("unknown post-step")
    except ValueError:
        raise ValueError(f"bad post-step {step!r}: use wiener=N[:K], temperature=P, swap or shift=K") from None
    # Values that would run, and be reported as a post-step, while doing something else:
    # P <= 0 turns m into 1 - m (the stems swapped) or a constant 1/2, and N < 1 runs no
    # iteration (the plain model); a negative K would sum over an empty span.
    if name == "temperature" and not (math.isfinite(settings["power"]) and settings["power"] > 0):
        raise ValueError(f"bad post-step {step!r}: give temperature=P with P a finite number above 0 "
                         "(P < 1 softens, P > 1 sharpens)")
    if name == "wiener" and (settings["iterations"] < 1 or (settings["span"] or 0) < 0):
        raise ValueError(f"bad post-step {step!r}: give wiener=N[:K] with N >= 1 iterations and K >= 0 frames")
    if name == "wiener" and sep.model.channels != 2:
        raise ValueError(f"--post {step}: the multichannel Wiener filter needs a stereo model")
    make = wiener_step if name == "wiener" else temperature_step
    return Separator(model=model, threads=threads, post_step=make(**settings))
