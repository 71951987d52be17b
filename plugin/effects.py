"""Separation as pedalboard-style effects: `VocalIsolator`, `VocalRemover`, `StemMixer`.

pedalboard 0.9 cannot hold a plugin written in Python (its chains run in C++,
``pedalboard.Plugin`` cannot be subclassed usefully, and a non-plugin is
refused), so these effects offer pedalboard's plugin surface themselves and
`acapella.Pedalboard` chains them with native plugins:

- ``process(input_array, sample_rate, buffer_size=8192, reset=True)`` and
  ``__call__``, which does the same;
- ``reset()``; ``is_effect`` (True) and ``is_instrument`` (False);
- ``latency``: samples, at the rate of the stream in progress (or of the last
  call; the model's rate before any), and ``latency_at(sample_rate)``;
- ``flush()``: the end of a stream (see below).

Input is taken as `Separator.separate` takes it: 1-D, ``(channels, samples)`` or
``(samples, channels)``, float or integer samples, any rate and channel count.
The output is float32 in the input's layout.

One-shot calls (``reset=True``, the default) return as many samples as went in,
aligned with the input. Streamed calls (``reset=False``) follow pedalboard's own
convention for a plugin with latency (checked on its Resample and
MP3Compressor): the output stays aligned with the input because the first
``latency`` samples of the stream are dropped, so after ``n`` samples have gone
in, ``max(0, n - latency)`` have come out, whatever the block sizes. Feeding
``latency`` samples of silence with ``reset=False`` returns the rest, which is
what `flush` does for you; `flush` also ends the stream, so the next streamed
call starts a new one.

Latency settings (``mode``):

=========== ======================================================= ==========
mode        what it does                                            latency
=========== ======================================================= ==========
"offline"   full look-ahead: identical to `Separator.separate`      ~6.9 s
"low"       0.1 s of look-ahead, 0.15 s chunks (live use)           ~0.42 s
"lowest"    no look-ahead, 0.1 s chunks                             ~0.21 s
=========== ======================================================= ==========

(latencies at 44.1 kHz; other rates add a few ms of resampling). Where the
voice sits in the stereo field (`Separator`'s ``vocal_pan``): one-shot calls in
"offline" mode find it as `Separator.separate` does; streamed calls cannot look
ahead and take the centre, unless the separator is given a number. The low
settings run the network once per short chunk on a ~6 s window, which is fine
for real time on two cores but costs separation quality; see the README
for the measured cost.

Threads: a `Separator` may be shared by any number of effects and threads. An
effect holds the state of one stream, so give each concurrent stream its own
effect (they can share one separator); calls on one effect are serialised by a
lock.
"""
from __future__ import annotations

import math
import numbers
import threading
from collections import deque

import numpy as np

from acapella import layout as _audio
from acapella.separator import Separator
from acapella.stems import STEMS

#: ``mode`` -> (future_seconds, chunk_seconds) of the streaming pipeline.
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


def _check_buffer_size(buffer_size) -> int:
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, numbers.Integral) or buffer_size < 1:
        raise ValueError(f"buffer_size must be a positive whole number of samples, got {buffer_size!r}")
    return int(buffer_size)


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


def _empty(channels: int) -> np.ndarray:
    return np.zeros((channels, 0), dtype=np.float32)


class _Fifo:
    """Samples (channels, n) waiting to go out; a queue of blocks, so no copying on push."""

    def __init__(self, channels: int):
        self.channels, self.size, self.blocks = channels, 0, deque()

    def push(self, x: np.ndarray) -> None:
        if x.shape[1]:
            self.blocks.append(x)
            self.size += x.shape[1]

    def take(self, n: int) -> np.ndarray:
        n = min(n, self.size)
        parts = []
        left = n
        while left:
            b = self.blocks[0]
            if b.shape[1] <= left:
                parts.append(self.blocks.popleft())
                left -= b.shape[1]
            else:
                parts.append(b[:, :left])
                self.blocks[0] = b[:, left:]  # a view: held memory stays bounded by the block
                left = 0
        self.size -= n
        if not parts:
            return _empty(self.channels)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


class _Stream:
    """Per-stream bookkeeping of an effect: rate, channels, counts, held output."""

    def __init__(self, rate: int, channels: int, latency: int, buffer_size: int):
        self.rate, self.channels, self.latency, self.buffer_size = rate, channels, latency, buffer_size
        self.pushed = self.emitted = 0
        self.out = _Fifo(channels)
        self.signature: tuple = ()


class Effect:
    """Base class of acapella's plugins: pedalboard's plugin surface over channels-first hooks.

    Subclasses implement `_latency_at`, `_one_shot`, `_open` and `_push`
    on ``(channels, samples)`` float32 arrays; this class handles input layouts
    and dtypes, the stream's exact delay, `flush` and locking.
    """

    def __init__(self):
        self._lock = threading.RLock()
        self._stream: _Stream | None = None
        self._rate: int | None = None  # rate of the last call
        self._layout: _audio.Layout | None = None  # layout of the last streamed block
        self._generation = 0  # counts dropped streams, so that a board holding this one sees them

    # -- pedalboard's plugin surface -------------------------------------------------

    @property
    def is_effect(self) -> bool:
        """True: this plugin takes audio in (as every pedalboard effect does)."""
        return True

    @property
    def is_instrument(self) -> bool:
        """False: this plugin is not an instrument."""
        return False

    def process(self, input_array, sample_rate, buffer_size: int = 8192, reset: bool = True) -> np.ndarray:
        """Runs audio through the effect; returns float32 in the input's layout.

        ``reset=True`` treats the input as a whole signal: as many samples come out
        as went in, aligned. ``reset=False`` continues the stream: the first
        `latency` samples of the stream are held back, so each call returns
        ``max(0, n - latency)`` minus what earlier calls returned, where ``n`` is
        the number of samples fed so far; `flush` returns the rest.
        """
        buffer_size = _check_buffer_size(buffer_size)
        rate = _audio.check_rate(sample_rate)
        with self._lock:
            if reset:
                x, layout = _audio.to_channels_first(input_array)
            else:
                x, layout = self._stream_input(input_array)
            y = self._process_cf(x, rate, buffer_size, reset)
            if not reset:
                self._layout = layout
            return layout.restore(y)

    def __call__(self, input_array, sample_rate, buffer_size: int = 8192, reset: bool = True) -> np.ndarray:
        """Same as `process`."""
        return self.process(input_array, sample_rate, buffer_size=buffer_size, reset=reset)

    def reset(self) -> None:
        """Forgets the stream in progress: the next ``reset=False`` call starts a new one."""
        with self._lock:
            if self._stream is not None:
                self._stream = None
                self._generation += 1
            self._layout = None
            self._reset_members()

    def flush(self) -> np.ndarray:
        """Ends the stream: returns its last `latency` samples and resets.

        This is what feeding `latency` samples of silence with ``reset=False``
        returns, in the layout of the last streamed block. With it the streamed
        output has exactly as many samples as the input. Returns an empty array
        when no stream is in progress.
        """
        with self._lock:
            st = self._stream
            if st is None:
                return np.zeros(0, dtype=np.float32)
            y = self._process_cf(np.zeros((st.channels, st.latency), np.float32), st.rate, st.buffer_size, False)
            layout = self._layout or _audio.Layout(2, False)  # (fed channels-first by a board)
            self.reset()
            return layout.restore(y)

    @property
    def latency(self) -> int:
        """Samples the output of a stream lags its input, at the stream's rate.

        The rate is that of the stream in progress, else of the last call, else
        the model's own rate; `latency_at` gives it for any rate.
        """
        with self._lock:
            rate = self._stream.rate if self._stream else self._rate
        return self.latency_at(rate if rate is not None else self._default_rate())

    def latency_at(self, sample_rate) -> int:
        """The latency, in samples, of a stream at ``sample_rate``."""
        return int(self._latency_at(_audio.check_rate(sample_rate)))

    # -- channels-first core, also used by boards ---------------------------------------

    def _process_cf(self, x: np.ndarray, rate: int, buffer_size: int, reset: bool) -> np.ndarray:
        with self._lock:
            if reset:
                if self._stream is not None:
                    self._stream = None
                    self._generation += 1
                self._rate = rate
                return self._one_shot(x, rate, buffer_size)
            st = self._stream
            if st is not None and st.signature != self._signature():
                # A member was changed, reset or replaced inside this one: its stream, and with it
                # this one's latency, started again, so this stream does too.
                st = self._stream = None
                self._generation += 1
            if st is None:
                self._reset_members()
                st = self._stream = _Stream(rate, x.shape[0], self._latency_at(rate), buffer_size)
                self._rate = rate
                self._open(rate, x.shape[0], buffer_size)
                st.signature = self._signature()
            elif rate != st.rate or x.shape[0] != st.channels:
                raise ValueError(
                    f"this stream is {st.channels} channel(s) at {st.rate} Hz, got {x.shape[0]} at {rate} Hz: "
                    "call reset() (or flush()) before starting another stream")
            st.pushed += x.shape[1]
            st.out.push(self._push(x, st.buffer_size))
            due = max(0, st.pushed - st.latency) - st.emitted
            y = st.out.take(due)
            st.emitted += y.shape[1]
            return y

    def _stream_input(self, input_array) -> tuple[np.ndarray, _audio.Layout]:
        """Like `audio.to_channels_first`, but reads an ambiguous block by the stream's channels.

        As pedalboard does: a 2-D block with a side equal to the stream's
        channel count is read that way, and a square block like the one before.
        """
        st = self._stream
        a = np.asarray(input_array)
        if st is None or a.ndim != 2:
            return _audio.to_channels_first(a)
        rows, cols = a.shape
        if rows == cols and self._layout is not None:
            channels_last = self._layout.channels_last
        elif rows == st.channels:
            channels_last = False
        elif cols == st.channels:
            channels_last = True
        else:
            return _audio.to_channels_first(a)  # a new channel count: refused by _process_cf
        cf = a.T if channels_last else a
        flat, _ = _audio.to_channels_first(np.ascontiguousarray(cf).reshape(-1))
        return flat.reshape(cf.shape), _audio.Layout(2, channels_last)

    # -- hooks ------------------------------------------------------------------------

    def _signature(self) -> tuple:
        """Changes whenever this effect's stream, or that of a plugin inside it, is dropped or replaced."""
        return (id(self), self._generation)

    def _default_rate(self) -> int:
        return 44100

    def _latency_at(self, rate: int) -> int:
        raise NotImplementedError

    def _one_shot(self, x: np.ndarray, rate: int, buffer_size: int) -> np.ndarray:
        raise NotImplementedError

    def _open(self, rate: int, channels: int, buffer_size: int) -> None:
        """Starts the per-stream state (called on the first ``reset=False`` block)."""

    def _push(self, x: np.ndarray, buffer_size: int) -> np.ndarray:
        """Streams a block; returns output aligned with the input, at least as much as is due."""
        raise NotImplementedError

    def _reset_members(self) -> None:
        """Resets what the effect holds (boards: their plugins)."""


class _Splitter:
    """Streams (vocals, accompaniment) delayed by exactly the pipeline's latency."""

    def __init__(self, pipe):
        self.pipe, self.latency = pipe, pipe.latency
        self.x, self.v = _Fifo(pipe.channels), _Fifo(pipe.channels)
        self.pushed = self.emitted = 0

    def push(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.pushed += x.shape[1]
        self.x.push(x)
        self.v.push(self.pipe.push(x))
        due = max(0, self.pushed - self.latency) - self.emitted
        v = self.v.take(due)
        x = self.x.take(v.shape[1])
        self.emitted += v.shape[1]
        return v, x - v


class SeparatingEffect(Effect):
    """An effect that splits its input with a `Separator` (shared, loaded lazily)."""

    def __init__(self, mode: str = "offline", separator: Separator | None = None):
        super().__init__()
        self._latencies: dict[int, int] = {}
        self._splitter: _Splitter | None = None
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

    def _pipeline(self, rate: int, channels: int):
        future, chunk = MODES[self._mode]
        return self.separator.pipeline(rate, channels, future_seconds=future, chunk_seconds=chunk)

    def _split_latency(self, rate: int) -> int:
        with self._lock:
            if rate not in self._latencies:
                self._latencies[rate] = self._pipeline(rate, 1).latency
            return self._latencies[rate]

    def _latency_at(self, rate: int) -> int:
        return self._split_latency(rate)

    def _split(self, x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
        """The whole signal's (vocals, accompaniment), aligned, as `Separator.separate` makes them."""
        sep = self.separator
        if MODES[self._mode][0] is None:
            # Full look-ahead: the output does not depend on the chunking, so use the
            # separator's own (large, fast) chunks, exactly as Separator.separate does.
            pan = sep.steering_pan(lambda a, b: x[:, a:b], x.shape[1], rate, x.shape[0])
            stream = sep.stem_stream(rate, x.shape[0], vocal_pan=pan)
        else:
            future, chunk = MODES[self._mode]
            stream = sep.stem_stream(rate, x.shape[0], future_seconds=future, chunk_seconds=chunk)
        size = sep.block_size(rate, x.shape[0])
        parts = [stream.push(x[:, i:i + size]) for i in range(0, x.shape[1], size)]
        parts.append(stream.finish())
        return tuple(np.concatenate([p[s] for p in parts], axis=1) for s in STEMS)

    def _open(self, rate: int, channels: int, buffer_size: int) -> None:
        self._splitter = _Splitter(self._pipeline(rate, channels))

    def _reset_members(self) -> None:
        self._splitter = None


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
        return self._mix(*self._splitter.push(x))

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
