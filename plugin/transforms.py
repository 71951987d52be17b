"""STFT and inverse STFT in numpy, on a fixed frame grid.

Frame ``k`` covers samples ``[k * hop - pad, k * hop - pad + n_fft)`` with
``pad = n_fft - hop``, so every real sample, the first one included, is covered
by the same number of frames. The window, used for analysis and synthesis, is a
periodic Hann at 75% overlap and its square root at 50%: in both cases the
squared windows overlap-add to a constant, which makes the round trip exact. The grid is global, which is what lets the streaming engine
(`acapella.stream`) cut a signal anywhere and still compute the same frames.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# numpy's FFT runs on one core and releases the GIL; the network between two FFTs
# uses every core, so the frames are cut into blocks shared out over threads. Small
# blocks also keep each temporary in cache and in memory that malloc reuses: a block
# holds about this many frames over all channels together, whatever their number.
_WORKERS = max(1, min(os.cpu_count() or 1, 4))
_BLOCK = 256  # frames, all channels together
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """Shared FFT threads, by their number; made again in a forked child, which inherits none of them."""
    with _pool_lock:
        key = (os.getpid(), workers)
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(workers, thread_name_prefix="acapella-fft")
        return _pools[key]


def _map_frames(fn, x: np.ndarray, out: np.ndarray, workers: int) -> np.ndarray:
    """out[..., t, :] = fn(x[..., t, :]), block by block of frames, on `workers` threads when there are several."""
    t = x.shape[-2]
    step = max(1, _BLOCK // max(1, int(np.prod(x.shape[:-2]))))

    def run(start: int) -> None:
        s = slice(start, min(start + step, t))
        out[..., s, :] = fn(x[..., s, :])

    starts = range(0, t, step)
    if len(starts) <= 1 or workers == 1:
        for start in starts:
            run(start)
    else:
        list(_executor(workers).map(run, starts))
    return out


class STFT:
    """Short-time Fourier transform with perfect reconstruction.

    Long signals are transformed on up to `threads` threads (default: the
    cores, at most 4).

    Example::

        >>> stft = STFT(2048, 512)
        >>> x = np.random.randn(2, 1000).astype(np.float32)
        >>> y = stft.inverse(stft.forward(x), length=1000)
        >>> bool(np.allclose(x, y, atol=1e-5))
        True
    """

    def __init__(self, n_fft: int, hop: int, threads: int | None = None):
        if n_fft % hop or n_fft // hop not in (2, 4):
            raise ValueError(f"hop {hop} must be n_fft / 2 or n_fft / 4 (n_fft {n_fft})")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.n_fft, self.hop = n_fft, hop
        self.workers = min(threads, _WORKERS) if threads is not None else _WORKERS
        self.pad = n_fft - hop
        self.bins = n_fft // 2 + 1
        n = np.arange(n_fft)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
        self.window = (np.sqrt(hann) if n_fft == 2 * hop else hann).astype(np.float32)
        # Sum of squared windows over the frames covering a sample: constant on the grid.
        self.norm = float(np.sum(self.window.reshape(-1, hop) ** 2, axis=0)[0])

    def count(self, n: int) -> int:
        """Whole frames in `n` samples, taken from the first one on."""
        return (n - self.n_fft) // self.hop + 1 if n >= self.n_fft else 0

    def frames(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Spectra of all whole frames in ``x`` (C, N), taken from x[:, 0] on: (C, T, bins).

        `out`, if given, is a (C, T, bins) complex64 array to fill, such as the
        tail of a longer buffer.
        """
        if out is None:
            out = np.empty(x.shape[:-1] + (self.count(x.shape[-1]), self.bins), dtype=np.complex64)
        if x.shape[-1] < self.n_fft:
            return out
        view = sliding_window_view(x, self.n_fft, axis=-1)[..., :: self.hop, :]
        return _map_frames(lambda v: np.fft.rfft(v * self.window, axis=-1), view, out, self.workers)

    def synthesis(self, spec: np.ndarray) -> np.ndarray:
        """Windowed inverse frames overlap-added: (C, T, bins) -> (C, (T - 1) * hop + n_fft).

        The result is not yet divided by `norm`, so consecutive calls can be added.
        """
        c, t, _ = spec.shape
        frames = np.empty(spec.shape[:-1] + (self.n_fft,), dtype=np.float32)
        _map_frames(lambda v: np.fft.irfft(v, n=self.n_fft, axis=-1) * self.window, spec, frames, self.workers)
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
