"""The separation effects: `VocalIsolator`, `VocalRemover`, `StemMixer` and `StemChains`.

Each takes audio as `Separator.separate` does and offers pedalboard's plugin
surface (`acapella.surface.Effect`), one-shot or streamed, at a latency set by
``mode`` (`MODES`). The README's "Effects" section shows them in use; how they
stream beside pedalboard's own plugins is in docs/internals.md.
"""
from __future__ import annotations

import math
import numbers
import threading

import numpy as np

from acapella.board import Pedalboard, as_board, check_no_cycle, members
from acapella.separator import Separator
from acapella.stems import Fifo
from acapella.surface import Effect

#: ``mode`` -> (future_seconds, chunk_seconds) of the streaming pipeline: "offline" has
#: full look-ahead and gives exactly `Separator.separate` (latency ~6.9 s at 44.1 kHz),
#: "low" ~0.42 s and "lowest" ~0.21 s, for live use at some cost in quality.
MODES: dict[str, tuple[float | None, float]] = {
    "offline": (None, 1.0),
    "low": (0.1, 0.15),
    "lowest": (0.0, 0.1),
}

#: Highest stem gain, in dB: a million times in amplitude, well inside float32.
MAX_DB = 120.0

_default: Separator | None = None
_default_lock = threading.Lock()


def default_separator() -> Separator:
    """The `Separator` shared by every effect built without ``separator=`` (loaded on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Separator()
        return _default


def _check_db(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number of dB (or -inf to mute), got {value!r}")
    value = float(value)
    if math.isnan(value) or value > MAX_DB:
        raise ValueError(f"{name} must be at most {MAX_DB:g} dB, or -inf to mute, got {value!r}")
    return value


def _gain(db: float) -> np.float32:
    return np.float32(0.0 if db == -math.inf else 10.0 ** (db / 20.0))


def _fmt_db(db: float) -> str:
    return "-inf" if db == -math.inf else repr(db)


class SeparatingEffect(Effect):
    """An effect that splits its input with a `Separator` (shared, loaded lazily)."""

    def __init__(self, mode: str = "offline", separator: Separator | None = None):
        super().__init__()
        self._latencies: dict[int, int] = {}
        self._stems = None  # the stream's `acapella.stems.StemStream`
        self.mode = mode
        self.separator = separator

    @property
    def mode(self) -> str:
        """Latency setting: "offline" (exact, ~6.9 s), "low" (~0.42 s) or "lowest" (~0.21 s).

        Setting it resets the effect.
        """
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if not isinstance(value, str) or value not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {value!r}")
        with self._lock:
            self._mode = value
            self._latencies = {}
            self.reset()

    @property
    def separator(self) -> Separator:
        """The `Separator` in use; setting None uses the shared default one. Setting it resets."""
        return self._separator if self._separator is not None else default_separator()

    @separator.setter
    def separator(self, value: Separator | None) -> None:
        if value is not None and not isinstance(value, Separator):
            raise ValueError(f"separator must be an acapella.Separator or None, got {value!r}")
        with self._lock:
            self._separator = value
            self._latencies = {}
            self.reset()

    def _default_rate(self) -> int:
        return self.separator.sample_rate

    def _stem_stream(self, rate: int, channels: int, vocal_pan: float | None = None):
        future, chunk = MODES[self._mode]
        return self.separator.stem_stream(rate, channels, vocal_pan=vocal_pan, future_seconds=future,
                                          chunk_seconds=chunk)

    def _split_latency(self, rate: int) -> int:
        with self._lock:
            if rate not in self._latencies:
                self._latencies[rate] = self._stem_stream(rate, 1).pipeline.latency
            return self._latencies[rate]

    def _latency_at(self, rate: int) -> int:
        return self._split_latency(rate)

    def _split(self, x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
        """The whole signal's (vocals, accompaniment), aligned, as `Separator.separate` makes them."""
        sep = self.separator
        if MODES[self._mode][0] is None:
            # Full look-ahead: the output does not depend on the network windows, so use the
            # separator's own (long, fast) ones, exactly as Separator.separate does.
            pan = sep.steering_pan(lambda a, b: x[:, a:b], x.shape[1], rate, x.shape[0])
            stream = sep.stem_stream(rate, x.shape[0], vocal_pan=pan)
        else:
            stream = self._stem_stream(rate, x.shape[0])
        stems = stream.whole(x, sep.block_size(rate, x.shape[0]))
        return stems["vocals"], stems["accompaniment"]

    def _split_push(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stream's (vocals, accompaniment) that became final with block `x`, aligned."""
        stems = self._stems.push(x)
        return stems["vocals"], stems["accompaniment"]

    def _open(self, rate: int, channels: int, buffer_size: int) -> None:
        self._stems = self._stem_stream(rate, channels)

    def _reset_members(self) -> None:
        self._stems = None


class StemMixer(SeparatingEffect):
    """Rebalances vocals against accompaniment: ``vocals_db`` and ``accompaniment_db`` of gain.

    Each gain is any number of dB up to +120, or ``-inf`` to remove that stem; changing one
    while streaming takes effect from the next samples that come out. At 0 dB
    each, the output is the input, delayed in a stream by `latency`.

    Example::

        >>> import numpy as np
        >>> from acapella import StemMixer
        >>> song = np.random.default_rng(0).standard_normal((2, 44100)).astype(np.float32) * 0.1
        >>> quieter_vocals = StemMixer(vocals_db=-6.0)
        >>> quieter_vocals(song, 44100).shape
        (2, 44100)
        >>> quieter_vocals
        StemMixer(vocals_db=-6.0, accompaniment_db=0.0, mode='offline')
    """

    _preset: tuple[float, float] | None = None

    def __init__(self, vocals_db: float = 0.0, accompaniment_db: float = 0.0, mode: str = "offline",
                 separator: Separator | None = None):
        self.vocals_db = vocals_db
        self.accompaniment_db = accompaniment_db
        super().__init__(mode=mode, separator=separator)

    @property
    def vocals_db(self) -> float:
        """Gain of the vocals, in dB; ``-inf`` removes them."""
        return self._vocals_db

    @vocals_db.setter
    def vocals_db(self, value: float) -> None:
        self._vocals_db = _check_db("vocals_db", value)

    @property
    def accompaniment_db(self) -> float:
        """Gain of the accompaniment, in dB; ``-inf`` removes it."""
        return self._accompaniment_db

    @accompaniment_db.setter
    def accompaniment_db(self, value: float) -> None:
        self._accompaniment_db = _check_db("accompaniment_db", value)

    def _mix(self, v: np.ndarray, a: np.ndarray) -> np.ndarray:
        gv, ga = _gain(self._vocals_db), _gain(self._accompaniment_db)
        if gv == 0:
            return a if ga == 1 else ga * a
        if ga == 0:
            return v if gv == 1 else gv * v
        return gv * v + ga * a

    def _one_shot(self, x: np.ndarray, rate: int, buffer_size: int) -> np.ndarray:
        return self._mix(*self._split(x, rate))

    def _push(self, x: np.ndarray, buffer_size: int) -> np.ndarray:
        return self._mix(*self._split_push(x))

    def __repr__(self) -> str:
        name = type(self).__name__
        parts = []
        if self._preset is None or (self._vocals_db, self._accompaniment_db) != self._preset:
            parts.append(f"vocals_db={_fmt_db(self._vocals_db)}, accompaniment_db={_fmt_db(self._accompaniment_db)}")
        parts.append(f"mode={self._mode!r}")
        if self._separator is not None:
            parts.append(f"separator=<Separator {self._separator.model.path.name}>")
        return f"{name}({', '.join(parts)})"


class VocalIsolator(StemMixer):
    """Outputs the vocals: a `StemMixer` with the accompaniment at -inf dB.

    Example::

        >>> import numpy as np
        >>> from acapella import VocalIsolator
        >>> song = np.random.default_rng(0).standard_normal((44100, 2)).astype(np.float32) * 0.1
        >>> VocalIsolator()(song, 44100).shape  # same layout as the input
        (44100, 2)
    """

    _preset = (0.0, -math.inf)

    def __init__(self, mode: str = "offline", separator: Separator | None = None):
        super().__init__(0.0, -math.inf, mode=mode, separator=separator)


class VocalRemover(StemMixer):
    """Outputs the accompaniment (karaoke): a `StemMixer` with the vocals at -inf dB.

    Its output is exactly the ``"accompaniment"`` of `Separator.separate` in
    the "offline" mode.
    """

    _preset = (-math.inf, 0.0)

    def __init__(self, mode: str = "offline", separator: Separator | None = None):
        super().__init__(-math.inf, 0.0, mode=mode, separator=separator)


class StemChains(SeparatingEffect):
    """Separates once, runs each stem through its own chain, and sums the results.

    ``vocals`` and ``accompaniment`` are each an `acapella.Pedalboard`, a list of
    plugins, one plugin, or None (that stem passes unchanged); lists are made
    boards, which may hold native plugins, acapella effects and boards. The
    branches' latencies are aligned: the effect's `latency` is the separation's
    plus the larger branch's, and the shorter branch waits for the longer.

    Example::

        >>> import numpy as np
        >>> from pedalboard import Compressor, Delay, Reverb
        >>> from acapella import StemChains
        >>> remix = StemChains(vocals=[Reverb(room_size=0.6), Delay(delay_seconds=0.25, mix=0.2)],
        ...                    accompaniment=[Compressor(threshold_db=-20, ratio=4)])
        >>> song = np.random.default_rng(0).standard_normal((2, 44100)).astype(np.float32) * 0.1
        >>> remix(song, 44100).shape
        (2, 44100)
    """

    def __init__(self, vocals=None, accompaniment=None, mode: str = "offline",
                 separator: Separator | None = None):
        self._vocals = as_board(vocals, "vocals")
        self._accompaniment = as_board(accompaniment, "accompaniment")
        self._queues: tuple[Fifo, Fifo] | None = None
        super().__init__(mode=mode, separator=separator)

    def _set_branch(self, attr: str, value) -> None:
        board = as_board(value, attr.lstrip("_"))
        check_no_cycle(self, board)
        with self._lock:
            setattr(self, attr, board)
            self.reset()

    @property
    def vocals(self) -> Pedalboard:
        """The chain run on the vocals. Setting it (a board, list, plugin or None) resets."""
        return self._vocals

    @vocals.setter
    def vocals(self, value) -> None:
        self._set_branch("_vocals", value)

    @property
    def accompaniment(self) -> Pedalboard:
        """The chain run on the accompaniment. Setting it (a board, list, plugin or None) resets."""
        return self._accompaniment

    @accompaniment.setter
    def accompaniment(self, value) -> None:
        self._set_branch("_accompaniment", value)

    def _check_branches(self) -> None:
        seen = set()
        for m in list(members(self._vocals)) + list(members(self._accompaniment)):
            if id(m) in seen:
                raise ValueError(f"{m!r} is in both chains (or twice in one): use a separate instance in each place")
            seen.add(id(m))

    def _latency_at(self, rate: int) -> int:
        return self._split_latency(rate) + max(self._vocals.latency_at(rate), self._accompaniment.latency_at(rate))

    def signature(self) -> tuple:
        return super().signature() + (self._vocals.signature(), self._accompaniment.signature())

    def held(self) -> list:
        return [self._vocals, self._accompaniment]

    def _one_shot(self, x, rate, buffer_size):
        self._check_branches()
        v, a = self._split(x, rate)
        return self._vocals.run(v, rate, buffer_size, True) + self._accompaniment.run(a, rate, buffer_size, True)

    def _open(self, rate, channels, buffer_size):
        self._check_branches()
        super()._open(rate, channels, buffer_size)
        self._queues = (Fifo(channels), Fifo(channels))

    def _push(self, x, buffer_size):
        rate = self._stream.rate
        v, a = self._split_push(x)
        qv, qa = self._queues
        qv.push(self._vocals.run(v, rate, buffer_size, False))
        qa.push(self._accompaniment.run(a, rate, buffer_size, False))
        n = min(qv.size, qa.size)
        return qv.take(n) + qa.take(n)

    def _reset_members(self) -> None:
        super()._reset_members()
        self._queues = None
        self._vocals.reset()
        self._accompaniment.reset()

    def __repr__(self) -> str:
        extra = f", separator=<Separator {self._separator.model.path.name}>" if self._separator is not None else ""
        return f"StemChains(vocals={self._vocals!r}, accompaniment={self._accompaniment!r}, mode={self._mode!r}{extra})"
