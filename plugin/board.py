"""`acapella.Pedalboard`: a drop-in for ``pedalboard.Pedalboard`` that also holds acapella's effects.

It chains native pedalboard plugins, acapella's effects and nested boards,
with pedalboard's list API; see the README's "Effects" section for use, and
docs/internals.md for how it keeps pedalboard's native plugins streaming.
"""
from __future__ import annotations

from collections.abc import MutableSequence

import numpy as np
import pedalboard as _pb

from acapella.surface import Effect, empty


def _is_native(obj) -> bool:
    """A pedalboard plugin whose processing happens in C++ (so it can join a native chain)."""
    return isinstance(obj, _pb.Plugin) and type(obj).process is _pb.Plugin.process


def _check_plugin(obj) -> None:
    if not isinstance(obj, (Effect, _pb.Plugin)):
        raise TypeError(f"{obj!r} is not a plugin: an acapella.Pedalboard holds pedalboard plugins, "
                        "acapella effects (VocalIsolator, VocalRemover, StemMixer, StemChains) and boards")
    if obj.is_instrument:
        raise TypeError(f"{obj!r} is an instrument: a Pedalboard holds effects only")


def members(obj):
    """Everything `obj` holds, itself included, depth first."""
    yield obj
    if isinstance(obj, Effect):
        for p in obj.held():
            yield from members(p)
    elif isinstance(obj, _pb.PluginContainer):
        for p in obj:
            yield from members(p)


def check_no_cycle(container, obj) -> None:
    """Refuses to put `obj` into `container` when `obj` holds `container`."""
    if any(m is container for m in members(obj)):
        raise ValueError(f"{obj!r} holds this board: a board cannot contain itself")


def _as_float32(y, channels: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    # pedalboard can give an empty output an odd shape, such as (0, channels).
    return empty(channels) if y.size == 0 else y


class _NativeStage:
    """Consecutive native plugins as one kept ``pedalboard.Pedalboard`` (or one Python-subclassed plugin)."""

    _MIN_PRIME = 64  # prime with a block longer than this, so its layout is never ambiguous

    def __init__(self, plugins: list, python_plugin=None):
        self.plugins = plugins
        self.runner = python_plugin if python_plugin is not None else _pb.Pedalboard(plugins)
        self.block = 0

    def latency_at(self, rate: int) -> int:
        return 0  # not reported by pedalboard

    def one_shot(self, x: np.ndarray, rate: int, buffer_size: int) -> np.ndarray:
        c, n = x.shape
        if n == 0:
            return empty(c)
        if n <= max(c, self._MIN_PRIME):
            # Short blocks can be read as (samples, channels); trailing silence does
            # not change what a causal plugin makes of the samples before it.
            x = np.concatenate([x, np.zeros((c, max(c, self._MIN_PRIME) + 1 - n), np.float32)], axis=1)
        y = self.runner.process(x, rate, buffer_size=buffer_size, reset=True)
        return _as_float32(y, c)[:, :n]

    def open(self, rate: int, channels: int, buffer_size: int) -> None:
        # Prepare for buffer_size-sample blocks, then clear the state (a reset=True
        # call resets in C++ without forgetting the preparation, as Python's reset() would).
        self.block = buffer_size
        n = max(buffer_size, channels + 1, self._MIN_PRIME + 1)
        self.runner.process(np.zeros((channels, n), np.float32), rate, buffer_size=buffer_size, reset=True)
        self.runner.process(np.zeros((channels, 0), np.float32), rate, buffer_size=buffer_size, reset=True)
        self.rate = rate

    def push(self, x: np.ndarray) -> np.ndarray:
        c, n = x.shape
        if n == 0:
            return empty(c)
        b = self.block
        parts = [_as_float32(self.runner.process(x[:, i:i + b], self.rate, buffer_size=b, reset=False), c)
                 for i in range(0, n, b)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def reset(self) -> None:
        self.runner.reset()


class _EffectStage:
    """One acapella effect or board."""

    def __init__(self, effect: Effect):
        self.effect = effect

    def latency_at(self, rate: int) -> int:
        return self.effect.latency_at(rate)

    def one_shot(self, x: np.ndarray, rate: int, buffer_size: int) -> np.ndarray:
        return self.effect.run(x, rate, buffer_size, True)

    def open(self, rate: int, channels: int, buffer_size: int) -> None:
        self.effect.reset()
        self.rate, self.buffer_size = rate, buffer_size

    def push(self, x: np.ndarray) -> np.ndarray:
        return self.effect.run(x, self.rate, self.buffer_size, False)

    def reset(self) -> None:
        self.effect.reset()


class Pedalboard(Effect, MutableSequence):
    """A chain of plugins: pedalboard's own plugins, acapella's effects and nested boards.

    Use it as ``pedalboard.Pedalboard``; only the import changes::

        >>> import numpy as np
        >>> from pedalboard import Compressor, HighpassFilter
        >>> from acapella import Pedalboard, VocalRemover
        >>> board = Pedalboard([HighpassFilter(80), VocalRemover(), Compressor()])
        >>> song = np.random.default_rng(0).standard_normal((2, 44100)).astype(np.float32) * 0.1
        >>> board(song, 44100).shape
        (2, 44100)
        >>> len(board), type(board[1]).__name__
        (3, 'VocalRemover')

    ``process(audio, sample_rate, buffer_size=8192, reset=True)`` runs the chain
    on a whole signal; with ``reset=False`` it streams (see `acapella.surface`):
    the output lags by `latency` samples, the sum of the members' latencies,
    and `flush` returns the end. Anything that is not a plugin is refused with
    a TypeError when it is added.
    """

    def __init__(self, plugins=None):
        Effect.__init__(self)
        self._plugins: list = []
        self._stages: list = []
        self._key: tuple | None = None
        if plugins is not None:
            try:
                items = list(plugins)
            except TypeError:
                raise TypeError(f"Pedalboard takes a list of plugins, got {plugins!r}") from None
            for p in items:
                self.append(p)

    # -- list API ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._plugins)

    def __iter__(self):
        return iter(list(self._plugins))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Pedalboard(self._plugins[index])
        return self._plugins[index]

    def _checked(self, obj):
        _check_plugin(obj)
        check_no_cycle(self, obj)
        return obj

    def __setitem__(self, index, value) -> None:
        with self._lock:
            if isinstance(index, slice):
                self._plugins[index] = [self._checked(p) for p in list(value)]
            else:
                self._plugins[index] = self._checked(value)

    def __delitem__(self, index) -> None:
        with self._lock:
            del self._plugins[index]

    def insert(self, index: int, plugin) -> None:
        """Inserts a plugin before ``index``."""
        with self._lock:
            self._plugins.insert(index, self._checked(plugin))

    def __repr__(self) -> str:
        n = len(self._plugins)
        return f"<acapella.Pedalboard with {n} plugin{'' if n == 1 else 's'}: {self._plugins!r}>"

    # -- stages --------------------------------------------------------------------------

    def _build(self) -> bool:
        """(Re)builds the stages if the list changed; True if it did."""
        key = tuple(map(id, self._plugins))
        if key == self._key:
            return False
        seen: dict[int, object] = {}
        for m in members(self):
            if id(m) in seen:
                raise ValueError(f"{m!r} is in this board more than once: a plugin holds the state "
                                 "of one stream, so use a separate instance in each place")
            seen[id(m)] = m
        stages, natives = [], []
        for p in self._plugins:
            if _is_native(p):
                natives.append(p)
                continue
            if natives:
                stages.append(_NativeStage(natives))
                natives = []
            stages.append(_EffectStage(p) if isinstance(p, Effect) else _NativeStage([p], python_plugin=p))
        if natives:
            stages.append(_NativeStage(natives))
        self._stages, self._key = stages, key
        return True

    def run(self, x, rate, buffer_size, reset):
        with self._lock:
            if self._build():
                self._stream = None  # a changed list starts a new stream
            return super().run(x, rate, buffer_size, reset)

    def _latency_at(self, rate: int) -> int:
        with self._lock:
            self._build()
            return sum(s.latency_at(rate) for s in self._stages)

    def signature(self) -> tuple:
        return super().signature() + tuple(p.signature() if isinstance(p, Effect) else id(p) for p in self._plugins)

    def held(self) -> list:
        return list(self._plugins)

    def _one_shot(self, x, rate, buffer_size):
        if not self._stages:
            return x.copy()  # as pedalboard's own empty board: the output is never the caller's array
        for s in self._stages:
            x = s.one_shot(x, rate, buffer_size)
        return x

    def _open(self, rate, channels, buffer_size):
        for s in self._stages:
            s.open(rate, channels, buffer_size)

    def _push(self, x, buffer_size):
        if not self._stages:
            return x.copy()
        for s in self._stages:
            x = s.push(x)
        return x

    def _reset_members(self) -> None:
        self._build()
        for s in self._stages:
            s.reset()


def as_board(value, name: str) -> Pedalboard:
    """A board from a board, a list of plugins, one plugin or None (an empty board)."""
    if value is None:
        return Pedalboard()
    if isinstance(value, Pedalboard):
        return value
    if isinstance(value, (Effect, _pb.Plugin)):
        return Pedalboard([value])
    if isinstance(value, (list, tuple)):
        return Pedalboard(value)
    raise TypeError(f"{name} must be an acapella.Pedalboard, a list of plugins, a plugin or None, got {value!r}")
