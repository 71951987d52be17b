"""`Effect`: pedalboard's plugin surface, over channels-first hooks, for acapella's plugins.

The separation effects (`acapella.effects`) and the board (`acapella.board`)
are built on it. The README's "Effects" section says how streams, latency and
`flush` behave; docs/internals.md why.
"""
from __future__ import annotations

import numbers
import threading

import numpy as np

from acapella import layout
from acapella.stems import Fifo


def check_buffer_size(buffer_size) -> int:
    """A positive whole number of samples, as pedalboard's ``buffer_size`` takes."""
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, numbers.Integral) or buffer_size < 1:
        raise ValueError(f"buffer_size must be a positive whole number of samples, got {buffer_size!r}")
    return int(buffer_size)


def empty(channels: int) -> np.ndarray:
    """No samples of `channels` channels, as (channels, 0) float32."""
    return np.zeros((channels, 0), dtype=np.float32)


class _Stream:
    """Per-stream bookkeeping of an effect: rate, channels, counts, held output."""

    def __init__(self, rate: int, channels: int, latency: int, buffer_size: int):
        self.rate, self.channels, self.latency, self.buffer_size = rate, channels, latency, buffer_size
        self.pushed = self.emitted = 0
        self.out = Fifo(channels)
        self.signature: tuple = ()
        # While nothing has come out, the blocks as given, in case a later block shows that
        # the first ones were read the wrong way round.
        self.given: list | None = []


class Effect:
    """Base class of acapella's plugins: pedalboard's plugin surface over channels-first hooks.

    Subclasses implement `_latency_at`, `_one_shot`, `_open` and `_push`
    on ``(channels, samples)`` float32 arrays; this class handles input layouts
    and dtypes, the stream's exact delay, `flush` and locking. `run` is the
    channels-first core that boards call; `held` and `signature` let a board see
    what a plugin holds and when its stream restarts.
    """

    def __init__(self):
        self._lock = threading.RLock()
        self._stream: _Stream | None = None
        self._rate: int | None = None  # rate of the last call
        self._layout: layout.Layout | None = None  # layout of the last streamed block
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
        buffer_size = check_buffer_size(buffer_size)
        rate = layout.check_rate(sample_rate)
        with self._lock:
            if reset:
                x, shape = layout.to_channels_first(input_array)
                return shape.restore(self.run(x, rate, buffer_size, True))
            return self._stream_block(input_array, rate, buffer_size)

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
            y = self.run(np.zeros((st.channels, st.latency), np.float32), st.rate, st.buffer_size, False)
            shape = self._layout or layout.Layout(2, False)  # (fed channels-first by a board)
            self.reset()
            return shape.restore(y)

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
        return int(self._latency_at(layout.check_rate(sample_rate)))

    # -- channels-first core, also used by boards ---------------------------------------

    def run(self, x: np.ndarray, rate: int, buffer_size: int, reset: bool) -> np.ndarray:
        """`process` on (channels, n) float32 at a checked rate: returns (channels, m) float32."""
        with self._lock:
            if reset:
                if self._stream is not None:
                    self._stream = None
                    self._generation += 1
                self._rate = rate
                return self._one_shot(x, rate, buffer_size)
            st = self._stream
            if st is not None and st.signature != self.signature():
                # A member was changed, reset or replaced inside this one: its stream, and with it
                # this one's latency, started again, so this stream does too.
                st = self._stream = None
                self._generation += 1
            if st is None:
                self._reset_members()
                st = self._stream = _Stream(rate, x.shape[0], self._latency_at(rate), buffer_size)
                self._rate = rate
                self._open(rate, x.shape[0], buffer_size)
                st.signature = self.signature()
            elif rate != st.rate or x.shape[0] != st.channels:
                raise ValueError(
                    f"this stream is {st.channels} channel(s) at {st.rate} Hz, got {x.shape[0]} at {rate} Hz: "
                    "call reset() (or flush()) before starting another stream")
            st.pushed += x.shape[1]
            st.out.push(self._push(x, st.buffer_size))
            due = max(0, st.pushed - st.latency) - st.emitted
            y = st.out.take(due)
            st.emitted += y.shape[1]
            if st.emitted:
                st.given = None
            return y

    def _stream_block(self, input_array, rate: int, buffer_size: int, channels: int | None = None) -> np.ndarray:
        """One ``reset=False`` block, its layout read as pedalboard's own plugins read it.

        A 2-D block with a side equal to the stream's channel count is read that
        way, and a square block like the one before; a stream's first block is
        read by its shape (its smaller side is channels). A first block such as
        (2, 1) is ambiguous: read as two samples of mono, it would make the next
        stereo block a change of channel count. So while nothing has come out,
        a block that fits only the other reading of the earlier ones starts the
        stream again with them read that way.
        """
        st = self._stream
        a = np.asarray(input_array)
        if st is not None and st.given is not None and a.ndim == 2 and st.channels not in a.shape:
            count = a.shape[0] if a.shape[0] <= a.shape[1] else a.shape[1]
            if all(b.ndim == 2 and count in b.shape for b in st.given):
                given, self._stream = st.given, None
                self._generation += 1
                self._reset_members()
                for b in given:
                    self._stream_block(b, rate, buffer_size, channels=count)
        x, shape = self._stream_input(a, channels)
        y = self.run(x, rate, buffer_size, False)
        if self._stream is not None and self._stream.given is not None:
            self._stream.given.append(a.copy())
        self._layout = shape
        return shape.restore(y)

    def _stream_input(self, a: np.ndarray, channels: int | None = None) -> tuple[np.ndarray, layout.Layout]:
        """Like `layout.to_channels_first`, but reads an ambiguous block by the stream's channels
        (or by `channels`, before the stream has any)."""
        st = self._stream
        count = st.channels if st is not None else channels
        if count is None or a.ndim != 2:
            return layout.to_channels_first(a)
        rows, cols = a.shape
        if rows == cols and self._layout is not None and st is not None:
            channels_last = self._layout.channels_last
        elif rows == count:
            channels_last = False
        elif cols == count:
            channels_last = True
        else:
            return layout.to_channels_first(a)  # a new channel count: refused by run
        cf = a.T if channels_last else a
        flat, _ = layout.to_channels_first(np.ascontiguousarray(cf).reshape(-1))
        return flat.reshape(cf.shape), layout.Layout(2, channels_last)

    # -- what a board needs to know --------------------------------------------------------

    def signature(self) -> tuple:
        """Changes whenever this effect's stream, or that of a plugin inside it, is dropped or replaced."""
        return (id(self), self._generation)

    def held(self) -> list:
        """The plugins this one holds (none; boards and chains hold some)."""
        return []

    # -- hooks ------------------------------------------------------------------------

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
