"""`spectrograms.png`: the input and each stem on a shared time axis."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from acapella.files import Reader, atomic_output
from acapella.transforms import STFT

MAX_COLUMNS = 1600  # time columns in the picture; longer files are max-pooled to fit


def _spectrogram(path: Path, stft: STFT) -> tuple[np.ndarray, float]:
    """dB magnitude (bins, columns) of a file read block by block, and its duration."""
    with Reader(path) as r:
        frames = max(1, r.frames // stft.hop)
        pool = max(1, -(-frames // MAX_COLUMNS))
        cols, carry = [], np.zeros(0, np.float32)
        tail = np.zeros(stft.pad, np.float32)
        for block in r.blocks(stft.hop * pool * 64):
            x = np.concatenate([tail, block.mean(axis=0)])
            spec = np.abs(stft.frames(x[None]))[0]
            tail = x[spec.shape[0] * stft.hop:]
            mags = np.concatenate([carry.reshape(-1, stft.bins), spec]) if carry.size else spec
            whole = mags.shape[0] // pool * pool
            if whole:
                cols.append(mags[:whole].reshape(-1, pool, stft.bins).max(axis=1))
            carry = mags[whole:]
        if carry.size:
            cols.append(carry.reshape(-1, stft.bins).max(axis=0, keepdims=True))
        duration = r.frames / r.sample_rate
    mag = np.concatenate(cols) if cols else np.zeros((1, stft.bins), np.float32)
    return 20 * np.log10(mag.T + 1e-5), duration


def plot_stems(mixture: str | os.PathLike, stems: dict[str, str | os.PathLike], out: str | os.PathLike) -> Path:
    """Writes a PNG with the spectrograms of `mixture` and each stem file, one above the other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with Reader(mixture) as r:
        rate = r.sample_rate
    stft = STFT(2048, 512)
    panels = [("input", Path(mixture))] + [(k, Path(v)) for k, v in stems.items()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 2.6 * len(panels)), sharex=True, squeeze=False)
    for ax, (title, path) in zip(axes[:, 0], panels):
        db, duration = _spectrogram(path, stft)
        top = db.max()
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                  extent=(0, duration, 0, rate / 2000))
        ax.set_title(title, loc="left")
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    out = Path(out)
    try:
        with atomic_output(out) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return out
