"""A synthetic song to try the tool on: a sung melody over drums, bass and chords.

Nothing here comes from a recording; the voice is a glottal pulse train through
vowel formants, with vibrato and phrasing, which is enough for a mask network
to recognise as singing.

    acapella demo demo.wav
"""
from __future__ import annotations

import numpy as np

# Formant frequencies and bandwidths (Hz) of a few sung vowels.
_VOWELS = {
    "a": ((800, 80), (1150, 90), (2900, 120), (3900, 130)),
    "e": ((400, 60), (1600, 80), (2700, 120), (3300, 150)),
    "i": ((270, 60), (2140, 90), (2950, 100), (3900, 120)),
    "o": ((450, 70), (800, 80), (2830, 100), (3800, 130)),
    "u": ((325, 50), (700, 60), (2530, 170), (3500, 180)),
}


def _resonator(x: np.ndarray, freq: float, bw: float, sr: int) -> np.ndarray:
    """Two-pole resonance, run as a recursive filter over the whole signal."""
    r = np.exp(-np.pi * bw / sr)
    a1, a2 = -2 * r * np.cos(2 * np.pi * freq / sr), r * r
    y = np.zeros_like(x)
    y1 = y2 = 0.0
    g = 1 - r
    for i, v in enumerate(x):
        y0 = g * v - a1 * y1 - a2 * y2
        y[i] = y0
        y2, y1 = y1, y0
    return y


def voice(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A mono sung line: notes of a minor scale on vowels, with vibrato and rests."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    f0 = np.zeros(n)
    amp = np.zeros(n)
    vowel_at = []
    t = 0
    scale = [0, 2, 3, 5, 7, 8, 10, 12]
    while t < n:
        dur = int(sr * rng.choice([0.25, 0.5, 0.75]))
        if rng.random() < 0.2:
            t += dur  # rest
            continue
        note = 220.0 * 2 ** (scale[rng.integers(len(scale))] / 12)
        seg = slice(t, min(n, t + dur))
        k = np.arange(seg.stop - seg.start) / sr
        f0[seg] = note * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * k))
        env = np.minimum(1, np.minimum(k / 0.03, (k[-1] - k + 1e-3) / 0.05))
        amp[seg] = env
        vowel_at.append((seg, "aeiou"[rng.integers(5)]))
        t += dur
    phase = np.cumsum(2 * np.pi * f0 / sr)
    # Glottal source: a band-limited sawtooth with a breathy noise share.
    src = np.zeros(n)
    for h in range(1, 30):
        src += np.where(f0 * h < sr / 2 - 500, np.sin(h * phase) / h, 0.0)
    src = src * amp + 0.02 * rng.standard_normal(n) * amp
    out = np.zeros(n)
    for seg, v in vowel_at:
        part = src[seg]
        out[seg] = sum(_resonator(part, f, b, sr) for f, b in _VOWELS[v])
    return (out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def accompaniment(seconds: float, sr: int, seed: int = 1) -> np.ndarray:
    """A mono backing: kick, snare and hats on a 120 bpm grid, a bass line and chords."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    beat = 0.5
    out = np.zeros(n)
    for b in np.arange(0, seconds, beat):
        i = int(b * sr)
        k = np.arange(min(n - i, int(0.3 * sr))) / sr
        if int(b / beat) % 2 == 0:
            out[i:i + k.size] += 0.9 * np.sin(2 * np.pi * (50 + 80 * np.exp(-k * 30)) * k) * np.exp(-k * 12)
        else:
            out[i:i + k.size] += 0.4 * rng.standard_normal(k.size) * np.exp(-k * 20)
        for h in (0, beat / 2):
            j = int((b + h) * sr)
            m = np.arange(min(n - j, int(0.05 * sr)))
            out[j:j + m.size] += 0.1 * np.diff(rng.standard_normal(m.size + 1)) * np.exp(-m / (0.01 * sr))
    roots = [110.0, 87.31, 130.81, 98.0]
    for c, start in enumerate(np.arange(0, seconds, 2.0)):
        seg = (t >= start) & (t < start + 2.0)
        root = roots[c % len(roots)]
        out[seg] += 0.35 * np.sign(np.sin(2 * np.pi * root / 2 * t[seg])) * 0.5
        for ratio in (1.0, 1.26, 1.5):
            out[seg] += 0.08 * np.sin(2 * np.pi * root * 2 * ratio * t[seg])
    return (out / (np.abs(out).max() + 1e-9)).astype(np.float32)


RATE = 44100  # the demo song's sample rate


def song(seconds: float = 8.0, sr: int = RATE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vocals, accompaniment), each (2, samples) float32 at `sr`; their sum is the mixture."""
    v = voice(seconds, sr, seed)
    a = accompaniment(seconds, sr, seed + 1)
    vocals = np.stack([0.45 * v, 0.4 * v])
    acc = np.stack([0.5 * a, 0.5 * np.roll(a, int(0.01 * sr))])
    return vocals.astype(np.float32), acc.astype(np.float32)

