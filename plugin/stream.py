"""The chunked, streaming mask engine at the model's sample rate.

Audio goes in as blocks of any size; STFT frames are cut on the global grid of
`acapella.transforms`; the network runs on windows of ``chunk`` frames plus
``past`` frames of context before them and ``future`` frames after; the
vocals mask of the window's centre is kept, cross-faded over ``crossfade``
frames with the previous window, applied to the complex mixture, and
overlap-added back to samples. Memory is bounded by the window, not the signal.

When ``past`` and ``future`` cover the network's receptive field, the masks do
not depend on where the chunks fall, so any chunk size and any block size give
the same output as one call on the whole signal. Shorter ``future`` context
trades quality for latency.
"""
from __future__ import annotations

import numpy as np

from acapella.transforms import STFT

# Default audio per network call. Each call re-runs the network's receptive field
# (about 5 s) on both sides of its chunk: at 60 s the window is 3,072 frames for 2,592
# kept (19% extra work), at 30 s 1,792 for 1,312 (37%); memory grows with the chunk.
CHUNK_SECONDS = 60.0


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


class SpectralStream:
    """Vocals of a (C, n) float32 stream, C a multiple of the model's channels.

    `push` returns the vocal samples that became final (possibly none), in order
    from the first input sample; `finish` returns the rest, so that the total
    equals the number of samples pushed.
    """

    def __init__(self, model, channels: int, chunk: int, future: int | None = None,
                 crossfade: int = 8, delay: float = 0.0):
        m = model.frame_multiple
        if channels % model.channels:
            raise ValueError(f"{channels} channels do not group into the model's {model.channels}")
        self.model, self.channels = model, channels
        self.stft = STFT(model.n_fft, model.hop, threads=model.threads)
        # Exact mode (full future context): chunks are multiples of the network's stride
        # product and every window starts on one, the alignment one-shot inference has,
        # so the output does not depend on the chunking. Low-latency mode gives that up.
        self.exact = future is None
        if self.exact:
            chunk, future = _round_up(max(chunk, 1), m), model.context
        self.chunk, self.future = max(1, int(chunk)), max(0, int(future))
        self.xf = min(crossfade, self.chunk)
        width = _round_up(model.context + self.xf + self.chunk + self.future, m)
        self.past = width - self.xf - self.chunk - self.future
        self.fade = (np.arange(1, self.xf + 1, dtype=np.float32) / (self.xf + 1))[:, None]
        # Phase ramp that advances the vocals by `delay` samples (resampler compensation).
        k = np.arange(self.stft.bins, dtype=np.float64)
        self.shift = np.exp(2j * np.pi * k * delay / model.n_fft).astype(np.complex64) if delay else None
        self.reset()

    @property
    def latency(self) -> int:
        """Samples pushed beyond a given sample before its vocals are final (worst case)."""
        return (self.future + self.chunk + self.xf - 1) * self.stft.hop + self.stft.n_fft - 1

    def reset(self) -> None:
        s, c = self.stft, self.channels
        self.pushed = 0
        self.inbuf = np.zeros((c, s.pad), dtype=np.float32)
        # Frames before the signal are silent: their spectra are exactly zero.
        self.spec = np.zeros((c, self.past + self.xf, s.bins), dtype=np.complex64)
        self.c0 = 0  # first frame of the next chunk
        self.held = None  # last `xf` masks of the previous window, awaiting the cross-fade
        self.ola = np.zeros((c, s.pad), dtype=np.float32)
        self.emitted = -s.pad  # padded-grid sample index of the next sample to come out

    def _cut_frames(self) -> None:
        s = self.stft
        n = s.count(self.inbuf.shape[1])
        if n:
            # The new frames go straight into the grown buffer: one copy, not two.
            old = self.spec.shape[1]
            spec = np.empty((self.channels, old + n, s.bins), dtype=np.complex64)
            spec[:, :old] = self.spec
            s.frames(self.inbuf, out=spec[:, old:])
            self.spec = spec
            self.inbuf = self.inbuf[:, n * s.hop:]

    def _window(self, chunk: int) -> np.ndarray:
        """Runs the network on the window for the chunk at `c0`; returns final vocal spectra."""
        width = self.xf + self.past + chunk + self.future
        window = self.spec[:, :width]
        mask = self.model.mask(window)[:, self.past:self.past + self.xf + chunk]
        if self.xf:
            if self.held is not None:
                mask[:, :self.xf] = self.held * (1 - self.fade) + mask[:, :self.xf] * self.fade
            self.held = mask[:, -self.xf:].copy()
        # Frames [c0 - xf, c0 + chunk - xf) are final now; the last xf wait for the next window.
        vocals = self._apply(mask[:, :chunk], window[:, self.past:self.past + chunk])
        if self.c0 == 0 and self.xf:
            vocals = vocals[:, self.xf:]  # frames before the signal
        self.spec = self.spec[:, chunk:]
        self.c0 += chunk
        return vocals

    def _apply(self, mask: np.ndarray, spectra: np.ndarray) -> np.ndarray:
        """Final (C, T, bins) vocals masks on the mixture's spectra -> vocal spectra.

        The one place a post-step on the mask would go (`benchmarks/post_steps.py`
        scores candidates by overriding it).
        """
        return mask * spectra

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
        while self.spec.shape[1] >= self.xf + self.past + self.chunk + self.future:
            parts.append(self._window(self.chunk))
        if not parts:
            return np.zeros((self.channels, 0), dtype=np.float32)
        return self._synthesise(np.concatenate(parts, axis=1))

    def finish(self) -> np.ndarray:
        """Ends the stream: returns every remaining vocal sample up to the last one pushed."""
        s, m = self.stft, self.model.frame_multiple
        total = s.num_frames(self.pushed)  # frames that must be final to cover every sample
        parts = []
        while total > 0 and self.c0 - self.xf < total:
            chunk = min(self.chunk, _round_up(total - self.c0 + self.xf, m)) if self.exact else self.chunk
            need = self.xf + self.past + chunk + self.future
            if self.spec.shape[1] < need:
                # Silence after the end, cut into frames like real input, so the result
                # equals what a longer stream would have given.
                missing = need - self.spec.shape[1]
                pad = np.zeros((self.channels, missing * s.hop + s.n_fft), np.float32)
                self.inbuf = np.concatenate([self.inbuf, pad], axis=1)
                self._cut_frames()
            parts.append(self._window(chunk))
        start = max(self.emitted, 0)
        out = self._synthesise(np.concatenate(parts, axis=1)) if parts else np.zeros((self.channels, 0), np.float32)
        return out[:, :max(self.pushed - start, 0)]

    def __repr__(self) -> str:
        return (f"SpectralStream(chunk={self.chunk}, past={self.past}, future={self.future}, "
                f"crossfade={self.xf})")
