"""The streaming STFT mask engine at the model's sample rate.

Audio goes in as blocks of any size; STFT frames are cut on the global grid of
`acapella.transforms`. The network runs on one window of ``window`` frames at a
time, with ``past`` frames of context before it and ``future`` frames after;
each window's vocals mask is cross-faded over ``crossfade`` frames with the
previous window's, applied to the complex mixture, and overlap-added back to
samples. Memory is bounded by the window, not the signal.

When ``past`` and ``future`` cover the network's receptive field, the masks do
not depend on where the windows fall, so any window and any block size give the
same output as one call on the whole signal. Shorter ``future`` context trades
quality for latency.
"""
from __future__ import annotations

import numpy as np

from acapella.transforms import STFT

# Default audio per network call (`Separator`'s ``chunk_seconds``). Each call re-runs the
# network's receptive field (about 5 s) on both sides of its window, so longer windows
# waste less work; memory grows with the window.
CHUNK_SECONDS = 60.0

# Frames of network input per onnxruntime call: channel groups beyond it are run one
# call after another, so the network's memory does not grow with the channel count.
CALL_FRAMES = 1024


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


class SpectralStream:
    """Vocals of a (C, n) float32 stream, C a multiple of the model's channels.

    `push` returns the vocal samples that became final (possibly none), in order
    from the first input sample; `finish` returns the rest, so that the total
    equals the number of samples pushed.

    `window` is the number of frames each network call makes final; `future`
    the frames of look-ahead (None: the whole receptive field, exact mode).
    `delay` advances the vocals by that many samples (the resamplers' delay).
    `post_step(mask, spectra)`, if given, turns each window's final masks and
    mixture spectra, both (C, frames, bins), into vocal spectra in place of
    ``mask * spectra``: the hook for trying other masking rules
    (`benchmarks/post_steps.py`).
    """

    def __init__(self, model, channels: int, window: int, future: int | None = None,
                 crossfade: int = 8, delay: float = 0.0, post_step=None):
        m = model.frame_multiple
        if channels % model.channels:
            raise ValueError(f"{channels} channels do not group into the model's {model.channels}")
        self.model, self.channels = model, channels
        self.stft = STFT(model.n_fft, model.hop, threads=model.threads)
        # Exact mode (full future context): windows are multiples of the network's stride
        # product and every one starts on one, the alignment one-shot inference has, so
        # the output does not depend on where the windows fall. Low-latency mode gives that up.
        self.exact = future is None
        if self.exact:
            window, future = _round_up(max(window, 1), m), model.context
        self.window, self.future = max(1, int(window)), max(0, int(future))
        self.xf = min(crossfade, self.window)
        width = _round_up(model.context + self.xf + self.window + self.future, m)
        self.past = width - self.xf - self.window - self.future
        self.post_step = post_step
        self.fade = (np.arange(1, self.xf + 1, dtype=np.float32) / (self.xf + 1))[:, None]
        # Phase ramp that advances the vocals by `delay` samples (resampler compensation).
        k = np.arange(self.stft.bins, dtype=np.float64)
        self.shift = np.exp(2j * np.pi * k * delay / model.n_fft).astype(np.complex64) if delay else None
        self.reset()

    @property
    def latency(self) -> int:
        """Samples pushed beyond a given sample before its vocals are final (worst case)."""
        return (self.future + self.window + self.xf - 1) * self.stft.hop + self.stft.n_fft - 1

    def reset(self) -> None:
        s, c = self.stft, self.channels
        self.pushed = 0
        self.inbuf = np.zeros((c, s.pad), dtype=np.float32)
        # Frames before the signal are silent: their spectra are exactly zero. `spec` is a
        # view of the frames not yet consumed, at `_start` in the reused buffer `_buf`.
        self._buf = np.zeros((c, self.past + self.xf, s.bins), dtype=np.complex64)
        self._start = 0
        self.spec = self._buf
        self.c0 = 0  # first frame of the next window
        self.held = None  # last `xf` masks of the previous window, awaiting the cross-fade
        self.ola = np.zeros((c, s.pad), dtype=np.float32)
        self.emitted = -s.pad  # padded-grid sample index of the next sample to come out

    def _cut_frames(self) -> None:
        s = self.stft
        n = s.count(self.inbuf.shape[1])
        if n:
            old = self.spec.shape[1]
            self._reserve(n)
            # The new frames go straight into the buffer: no second copy of the spectra.
            s.frames(self.inbuf, out=self._buf[:, self._start + old:self._start + old + n])
            self.spec = self._buf[:, self._start:self._start + old + n]
            self.inbuf = self.inbuf[:, n * s.hop:]

    def _reserve(self, n: int) -> None:
        """Room for `n` more frames after the live ones, reusing the buffer where it can.

        A buffer is only replaced when the live frames and the new ones do not fit
        in it, so the spectra are held once, not once in the old buffer and again
        in its copy: with many channels they are most of the engine's memory.
        """
        live, cap = self.spec.shape[1], self._buf.shape[1]
        if self._start + live + n <= cap:
            return
        if live + n <= cap and self._start >= max(1, live // 8):
            # Move the live frames to the front in pieces that never overlap their source.
            step = self._start
            for k in range(0, live, step):
                m = min(step, live - k)
                self._buf[:, k:k + m] = self._buf[:, self._start + k:self._start + k + m]
        else:
            buf = np.empty((self.channels, live + n + 64 + n // 4, self._buf.shape[2]), dtype=np.complex64)
            buf[:, :live] = self.spec
            self._buf = buf
        self._start = 0
        self.spec = self._buf[:, :live]

    def _mask(self, spec: np.ndarray, keep: slice = slice(None)) -> np.ndarray:
        """The network's vocals mask of (C, T, bins) spectra, frames `keep` of it, a few channel groups per call."""
        per = self.model.channels
        step = per * max(1, CALL_FRAMES // max(1, spec.shape[1]))
        if spec.shape[0] <= step:
            return self.model.mask(spec)[:, keep]
        out = None
        for g in range(0, spec.shape[0], step):
            part = self.model.mask(spec[g:g + step])[:, keep]
            if out is None:
                out = np.empty((spec.shape[0],) + part.shape[1:], dtype=np.float32)
            out[g:g + step] = part
        return out

    def _run_window(self, frames: int) -> np.ndarray:
        """Runs the network on the window of `frames` frames at `c0`; returns final vocal spectra."""
        width = self.xf + self.past + frames + self.future
        spec = self.spec[:, :width]
        mask = self._mask(spec, slice(self.past, self.past + self.xf + frames))
        if self.xf:
            if self.held is not None:
                mask[:, :self.xf] = self.held * (1 - self.fade) + mask[:, :self.xf] * self.fade
            self.held = mask[:, -self.xf:].copy()
        # Frames [c0 - xf, c0 + frames - xf) are final now; the last xf wait for the next window.
        mixture = spec[:, self.past:self.past + frames]
        mask = mask[:, :frames]
        vocals = mask * mixture if self.post_step is None else self.post_step(mask, mixture)
        if self.c0 == 0 and self.xf:
            vocals = vocals[:, self.xf:]  # frames before the signal
        self.spec = self.spec[:, frames:]
        self._start += frames
        self.c0 += frames
        return vocals

    def vocal_energy(self, x: np.ndarray) -> np.ndarray:
        """Energy of the vocal spectra of a short (C, n) signal, per channel, from one network call.

        The signal is padded with silent frames to the network's stride; the
        stream's own state is not touched.
        """
        spec = self.stft.forward(x)
        frames = spec.shape[1]
        if frames == 0:
            return np.zeros(x.shape[0])
        padded = _round_up(frames, self.model.frame_multiple)
        spec = np.pad(spec, ((0, 0), (0, padded - frames), (0, 0)))
        vocals = self._mask(spec) * spec
        return (np.abs(vocals.astype(np.complex128)) ** 2).reshape(x.shape[0], -1).sum(axis=1)

    def _synthesise(self, vocals: np.ndarray) -> np.ndarray:
        s = self.stft
        if vocals.shape[1] == 0:
            return np.zeros((self.channels, 0), dtype=np.float32)
        if self.shift is not None:
            vocals = vocals * self.shift
        y = s.synthesis(vocals)
        y[:, :s.pad] += self.ola
        done = y.shape[1] - s.pad
        self.ola = y[:, done:].copy()
        out = y[:, :done] / s.norm
        start = self.emitted
        self.emitted += done
        if start < 0:  # the padding before the signal
            out = out[:, min(-start, out.shape[1]):]
        return out

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feeds (C, n) samples; returns the vocal samples that are now final."""
        self.pushed += x.shape[1]
        self.inbuf = np.concatenate([self.inbuf, np.asarray(x, dtype=np.float32)], axis=1)
        self._cut_frames()
        parts = []
        while self.spec.shape[1] >= self.xf + self.past + self.window + self.future:
            parts.append(self._run_window(self.window))
        if not parts:
            return np.zeros((self.channels, 0), dtype=np.float32)
        return self._synthesise(np.concatenate(parts, axis=1))

    def finish(self) -> np.ndarray:
        """Ends the stream: returns every remaining vocal sample up to the last one pushed."""
        s, m = self.stft, self.model.frame_multiple
        total = s.num_frames(self.pushed)  # frames that must be final to cover every sample
        parts = []
        while total > 0 and self.c0 - self.xf < total:
            frames = min(self.window, _round_up(total - self.c0 + self.xf, m)) if self.exact else self.window
            need = self.xf + self.past + frames + self.future
            if self.spec.shape[1] < need:
                # Silence after the end, cut into frames like real input, so the result
                # equals what a longer stream would have given.
                missing = need - self.spec.shape[1]
                pad = np.zeros((self.channels, missing * s.hop + s.n_fft), np.float32)
                self.inbuf = np.concatenate([self.inbuf, pad], axis=1)
                self._cut_frames()
            parts.append(self._run_window(frames))
        start = max(self.emitted, 0)
        out = self._synthesise(np.concatenate(parts, axis=1)) if parts else np.zeros((self.channels, 0), np.float32)
        return out[:, :max(self.pushed - start, 0)]

    def __repr__(self) -> str:
        return (f"SpectralStream(window={self.window}, past={self.past}, future={self.future}, "
                f"crossfade={self.xf})")
