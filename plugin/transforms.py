"""STFT and inverse STFT in numpy, on a fixed frame grid.

Frame ``k`` covers samples ``[k * hop - pad, k * hop - pad + n_fft)`` with
``pad = n_fft - hop``, so every real sample, the first one included, is covered
by the same number of frames. The window, used for analysis and synthesis, is a
periodic Hann at 75% overlap and its square root at 50%: in both cases the
squared windows overlap-add to a constant, which makes the round trip exact. The grid is global, which is what lets the streaming engine
(`acapella.stream`) cut a signal anywhere and still compute the same frames.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class STFT:
    """Short-time Fourier transform with perfect reconstruction.

    Example::

        >>> stft = STFT(2048, 512)
        >>> x = np.random.randn(2, 1000).astype(np.float32)
        >>> y = stft.inverse(stft.forward(x), length=1000)
        >>> bool(np.allclose(x, y, atol=1e-5))
        True
    """

    def __init__(self, n_fft: int, hop: int):
        if n_fft % hop or n_fft // hop not in (2, 4):
            raise ValueError(f"hop {hop} must be n_fft / 2 or n_fft / 4 (n_fft {n_fft})")
        self.n_fft, self.hop = n_fft, hop
        self.pad = n_fft - hop
        self.bins = n_fft // 2 + 1
        n = np.arange(n_fft)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
        self.window = (np.sqrt(hann) if n_fft == 2 * hop else hann).astype(np.float32)
        # Sum of squared windows over the frames covering a sample: constant on the grid.
        self.norm = float(np.sum(self.window.reshape(-1, hop) ** 2, axis=0)[0])

    def frames(self, x: np.ndarray) -> np.ndarray:
        """Spectra of all whole frames in ``x`` (C, N), taken from x[:, 0] on: (C, T, bins)."""
        if x.shape[-1] < self.n_fft:
            return np.zeros(x.shape[:-1] + (0, self.bins), dtype=np.complex64)
        view = sliding_window_view(x, self.n_fft, axis=-1)[..., :: self.hop, :]
        return np.fft.rfft(view * self.window, axis=-1).astype(np.complex64)

    def synthesis(self, spec: np.ndarray) -> np.ndarray:
        """Windowed inverse frames overlap-added: (C, T, bins) -> (C, (T - 1) * hop + n_fft).

        The result is not yet divided by `norm`, so consecutive calls can be added.
        """
        c, t, _ = spec.shape
        frames = np.fft.irfft(spec, n=self.n_fft, axis=-1).astype(np.float32) * self.window
        r = self.n_fft // self.hop
        out = np.zeros((c, t + r - 1, self.hop), dtype=np.float32)
        parts = frames.reshape(c, t, r, self.hop)
        for i in range(r):
            out[:, i:i + t] += parts[:, :, i]
        return out.reshape(c, -1)

    def num_frames(self, length: int) -> int:
        """Frames needed so that all `length` samples are fully covered."""
        return -(-(length + self.pad) // self.hop) if length > 0 else 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(C, N) float -> (C, T, bins) complex64 on the global grid."""
        x = np.asarray(x, dtype=np.float32)
        t = self.num_frames(x.shape[-1])
        total = (t - 1) * self.hop + self.n_fft if t else 0
        padded = np.zeros(x.shape[:-1] + (total,), dtype=np.float32)
        padded[..., self.pad:self.pad + x.shape[-1]] = x
        return self.frames(padded)

    def inverse(self, spec: np.ndarray, length: int) -> np.ndarray:
        """(C, T, bins) -> (C, length) float32; inverse of `forward`."""
        if spec.shape[-2] == 0:
            return np.zeros(spec.shape[:-2] + (length,), dtype=np.float32)
        y = self.synthesis(spec) / self.norm
        return np.ascontiguousarray(y[..., self.pad:self.pad + length])
