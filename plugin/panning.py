"""Where the voice sits in the stereo field, and the turn of the field that centres it.

The stereo network reads left, right, mid and side, and learned from songs
whose voice is in the centre: a voice panned to one side looks to it like an
instrument, and most of it is missed (model card, Panning). Each channel
separated on its own as a mono song does not depend on the voice's place, so
the balance of the two channels' vocals says where it sits. A rotation of the
two channels that takes that direction to the centre then gives the stereo
network the input it knows; being orthogonal, it turns the vocals back exactly,
and the stems still sum to the input.
"""
from __future__ import annotations

import numpy as np

#: Estimates nearer the centre than this are taken as centred: the field is left
#: as it is, so songs with a centred voice give exactly the unsteered result (the
#: model card's Panning section has the estimates on the validation songs).
CENTRE = 0.4
#: The analysis looks at up to this many excerpts of this many STFT frames
#: (about 6 s at the default model's hop, the length it was trained on).
EXCERPTS = 3
EXCERPT_FRAMES = 256


def rotation(pan: float) -> np.ndarray:
    """The 2x2 orthogonal matrix that takes a voice at `pan` to the centre.

    `pan` follows the constant-power law of the benchmark's ``--pan-vocals``:
    -1 hard left, 0 centre, 1 hard right, a voice at angle ``(pan + 1) * pi / 4``
    in the (left, right) plane. Applied to (channels, samples) as ``R @ x``;
    ``R.T`` turns the result back.

    Example::

        >>> import numpy as np
        >>> r = rotation(-1.0)  # a voice hard left ...
        >>> np.round(r @ np.array([1.0, 0.0]), 3).tolist()  # ... lands in the centre
        [0.707, 0.707]
    """
    if not -1.0 <= pan <= 1.0:
        raise ValueError(f"vocal pan must be between -1 (hard left) and 1 (hard right), got {pan}")
    turn = np.pi / 4 - (pan + 1.0) * np.pi / 4
    c, s = np.cos(turn), np.sin(turn)
    return np.array([[c, -s], [s, c]], dtype=np.float32)


def excerpt_spans(length: int, excerpt: int, count: int = EXCERPTS) -> list[tuple[int, int]]:
    """(start, stop) sample spans of up to `count` excerpts of `excerpt` samples, spread over `length`.

    A signal shorter than the excerpts together is taken whole.
    """
    if length <= count * excerpt:
        return [(0, length)] if length else []
    centres = [length * (i + 1) // (count + 1) for i in range(count)]
    return [(c - excerpt // 2, c - excerpt // 2 + excerpt) for c in centres]


def pan_of_energies(energy) -> float:
    """Where the voice sits, -1 (hard left) .. 1 (hard right), from the energies of the two channels' vocals.

    Each channel is separated on its own as a mono song (`Separator.find_vocal_pan`
    does that through the engine); the pan follows the same constant-power law
    as `rotation`. Silence gives 0.

    Example::

        >>> pan_of_energies([1.0, 0.0]), pan_of_energies([1.0, 1.0]), pan_of_energies([0.0, 0.0])
        (-1.0, 0.0, 0.0)
    """
    left, right = (float(e) for e in energy)
    if not (left or right):
        return 0.0
    return float(np.arctan2(np.sqrt(right), np.sqrt(left)) * 4 / np.pi - 1.0)


def steer(pan: float) -> float:
    """The pan to turn to the centre for an estimate: 0 within `CENTRE` of the centre."""
    return pan if abs(pan) >= CENTRE else 0.0
