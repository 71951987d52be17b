"""The masking oracle: the best a mask on the engine's STFT can do, for `quality.py --oracle`."""
from __future__ import annotations

from typing import Callable

import numpy as np

from acapella.transforms import STFT


def oracle_mask(n_fft: int, hop: int) -> Callable[[np.ndarray, int, np.ndarray], dict]:
    """An oracle for `evaluate_folder(..., with_references=True)`: the best mask a mask model can give.

    Per channel and STFT bin it takes the real mask in [0, 1] that brings the
    masked mixture closest to the true vocals (the phase-sensitive mask,
    ``Re(V X*) / |X|^2``, clipped), with the engine's own STFT (`acapella.transforms.STFT`)
    at the song's rate; the accompaniment is the rest of the mixture, as in the
    engine. Its scores bound what a network that masks with this STFT can reach.

    Example::

        >>> res = evaluate_folder(oracle_mask(2048, 1024), "../shared/data/musdb7-train",
        ...                       songs=["ANiMAL - Rockshow"], with_references=True)  # doctest: +SKIP
    """
    stft = STFT(n_fft, hop)

    def separate(mixture: np.ndarray, sample_rate: int, references: np.ndarray) -> dict:
        x = stft.forward(mixture.T)
        v = stft.forward(references[0].T)
        mask = np.clip(np.real(v * np.conj(x)) / np.maximum(np.abs(x) ** 2, 1e-12), 0.0, 1.0)
        vocals = stft.inverse(mask * x, mixture.shape[0]).T
        return {"vocals": vocals, "accompaniment": mixture - vocals}

    return separate
