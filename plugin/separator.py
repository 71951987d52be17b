"""`Separator`: the one entry point that the CLI, the effects and the host adapters share."""
from __future__ import annotations

import numbers
import os
import threading
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from pedalboard.io import StreamResampler

from acapella import layout as _audio
from acapella import panning
from acapella.onnx_model import OnnxModel
from acapella.stream import CHUNK_SECONDS, SpectralStream

from acapella.stems import STEMS, parse_stems

_delays: dict[tuple[int, int], float] = {}
_delays_lock = threading.Lock()


def _resampler(source_rate: int, target_rate: int, channels: int) -> StreamResampler:
    """pedalboard's `StreamResampler`, told its blocks are (channels, samples).

    It guesses a block's layout from its shape until it has seen one, and reads a
    first block of (channels, n <= channels) the wrong way round; an empty block
    sets the layout and changes nothing else.
    """
    r = StreamResampler(source_rate, target_rate, channels)
    r.process(np.zeros((channels, 0), np.float32))
    return r


def _round_trip_delay(rate: int, model_rate: int) -> float:
    """Delay, in samples at `rate`, of pedalboard's resampler there and back.

    It is a fixed fraction of a sample that depends only on the two rates; left
    alone it would misalign the vocals against the mixture that they are
    subtracted from. Measured once per pair from the phase of a 1 kHz tone.
    """
    key = (rate, model_rate)
    with _delays_lock:
        if key not in _delays:
            n = rate
            t = np.arange(n) / rate
            tone = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)[None]
            there = _resampler(rate, model_rate, 1)
            back = _resampler(model_rate, rate, 1)
            mid = np.concatenate([there.process(tone), there.process(None)], axis=1)
            y = np.concatenate([back.process(mid), back.process(None)], axis=1)[0]
            s = slice(n // 4, min(y.size, n) - n // 4)
            phase = np.angle(np.sum(y[s] * np.exp(-2j * np.pi * 1000.0 * t[s])) * 1j)
            _delays[key] = float(-phase / (2 * np.pi * 1000.0) * rate)
        return _delays[key]


class Pipeline:
    """Streaming vocals for one stream at its own rate and channel count.

    Channels are grouped into the model's channel count (pairs for a stereo
    model; mono is doubled; an odd last channel is doubled), or with
    `per_channel` each channel is doubled into a group of its own. A stereo
    stream with a `pan` other than 0 is turned so that a voice there sits in the
    centre (`acapella.panning`), and its vocals turned back. Other rates go
    through pedalboard's `StreamResampler` to the model's rate and back.
    """

    def __init__(self, model: OnnxModel, sample_rate: int, channels: int, chunk_frames: int,
                 future_frames: int | None = None, per_channel: bool = False, pan: float = 0.0):
        self.model, self.rate, self.channels = model, sample_rate, channels
        per = model.channels
        if per_channel:
            route = [c for c in range(channels) for _ in range(per)]
        else:
            groups = -(-channels // per)
            route = [min(g * per + j, channels - 1) for g in range(groups) for j in range(per)]
        self.pan = float(pan) if channels == 2 and per == 2 and not per_channel else 0.0
        # The model's channels are a linear map of the input's (copies, or a turn of the
        # stereo field); the vocals come back through its inverse (copies averaged).
        self._scatter = np.zeros((len(route), channels), dtype=np.float32)
        self._scatter[np.arange(len(route)), route] = 1.0
        self._gather = self._scatter.T / self._scatter.sum(axis=0)[:, None]
        if self.pan:
            self._scatter = panning.rotation(self.pan)
            self._gather = self._scatter.T.copy()
        self._direct = route == list(range(channels)) and not self.pan  # stereo as it is: no copies
        self.resample = sample_rate != model.sample_rate
        delay = 0.0
        if self.resample:
            delay = _round_trip_delay(sample_rate, model.sample_rate) * model.sample_rate / sample_rate
            # Input samples of silence that carry each resampler's filter past the end (64 samples
            # at its input rate) with room to spare.
            self._tail = 512 * int(np.ceil(max(1.0, sample_rate / model.sample_rate)))
        self.stream = SpectralStream(model, len(route), chunk_frames, future_frames, delay=delay)
        self.reset()

    @property
    def latency(self) -> int:
        """Worst-case input samples between a sample going in and its vocals coming out."""
        lat = self.stream.latency
        if self.resample:
            # Two resamplers, each holding back a window of samples at its input rate.
            lat = lat * self.rate / self.model.sample_rate + 2 * 64 * max(1.0, self.rate / self.model.sample_rate) + 4
        return int(np.ceil(lat))

    def reset(self) -> None:
        self.stream.reset()
        self.pushed = self.emitted = 0
        if self.resample:
            n = self._scatter.shape[0]
            self._there = _resampler(self.rate, self.model.sample_rate, n)
            self._back = _resampler(self.model.sample_rate, self.rate, n)

    def _out(self, v: np.ndarray) -> np.ndarray:
        if self.resample and v.shape[1]:
            v = self._back.process(np.ascontiguousarray(v))
        return self._regroup(v)

    def _regroup(self, v: np.ndarray) -> np.ndarray:
        """The model's channel groups back to the input's channels (doubled ones averaged)."""
        if self._direct:
            return v
        return self._gather @ v if v.shape[1] else np.zeros((self.channels, 0), np.float32)

    def push(self, x: np.ndarray) -> np.ndarray:
        """(channels, n) float32 in; the vocal samples that became final out."""
        if getattr(x, "ndim", 0) != 2 or x.shape[0] != self.channels:
            raise ValueError(f"this pipeline takes ({self.channels}, n) blocks, got shape {getattr(x, 'shape', None)}")
        if not np.isfinite(x).all():
            raise ValueError("audio contains NaN or infinite samples: clean or clip the input first")
        self.pushed += x.shape[1]
        if not self._direct:
            x = self._scatter @ x
        if self.resample:
            x = self._there.process(np.ascontiguousarray(x))
        out = self._out(self.stream.push(x))
        self.emitted += out.shape[1]
        return out

    def finish(self) -> np.ndarray:
        """The remaining vocals, so that the total output equals the total input."""
        if self.resample:
            # Silence after the end, as a stream that is flushed with silence has, so that the
            # resampler's ringing past the last sample reaches the network in both cases and
            # one-shot output equals streamed output.
            tail = np.zeros((self._scatter.shape[0], self._tail), np.float32)
            head = [self.stream.push(self._there.process(tail)), self.stream.push(self._there.process(None))]
            out = self._out(np.concatenate(head + [self.stream.finish()], axis=1))
            out = np.concatenate([out, self._regroup(self._back.process(None))], axis=1)
        else:
            out = self._out(self.stream.finish())
        want = self.pushed - self.emitted
        # The resamplers' rounding can leave a sample or two over or under.
        if out.shape[1] < want:
            out = np.concatenate([out, np.zeros((self.channels, want - out.shape[1]), np.float32)], axis=1)
        out = out[:, :want]
        self.emitted += out.shape[1]
        return out


class Separator:
    """Splits audio into vocals and accompaniment with a bundled ONNX model.

    The model is loaded once; `separate` and `separate_file` may be called from
    several threads at once.

    `vocal_pan` says where the voice sits in a stereo song: -1 hard left, 0 the
    centre, 1 hard right. The stereo network learned from centred voices and
    misses most of one panned to a side, so the stereo field is turned to bring
    the voice to the centre, and the vocals turned back (`acapella.panning`).
    With ``"auto"`` (the default), `separate` and `separate_file` first find
    where it sits from three 6-second excerpts, each channel separated on its
    own (about a tenth more work on a 4-minute song), and leave a voice within
    0.4 of the centre as it is; streams (`pipeline`, the effects) cannot look
    ahead and take the centre unless given a number.

    `per_channel=True` separates each channel on its own, as a mono song, for
    twice the network's work on stereo: another way to reach a voice on one
    side; on centred voices it scores lower (see the model card).

    Example::

        >>> import numpy as np
        >>> from acapella import Separator
        >>> sep = Separator()
        >>> song = np.random.randn(2, 44100).astype(np.float32) * 0.1
        >>> stems = sep.separate(song, 44100)
        >>> stems["vocals"].shape
        (2, 44100)
        >>> bool(np.allclose(stems["vocals"] + stems["accompaniment"], song, atol=1e-6))
        True
    """

    def __init__(self, model: str | os.PathLike = "default", threads: int | None = None,
                 chunk_seconds: float = CHUNK_SECONDS, per_channel: bool = False,
                 vocal_pan: float | str = "auto"):
        chunk_seconds = _audio.check_seconds("chunk_seconds", chunk_seconds)
        if vocal_pan != "auto":
            if isinstance(vocal_pan, bool) or not isinstance(vocal_pan, numbers.Real) or not -1 <= vocal_pan <= 1:
                raise ValueError(f"vocal_pan must be 'auto' or a number from -1 (hard left) to 1 (hard right), got {vocal_pan!r}")
            vocal_pan = float(vocal_pan)
        self.model = OnnxModel(model, threads=threads)
        self.chunk_seconds = float(chunk_seconds)
        self.per_channel = bool(per_channel)
        self.vocal_pan = vocal_pan

    @property
    def sample_rate(self) -> int:
        """The rate the model runs at; other rates are resampled to it and back."""
        return self.model.sample_rate

    def pipeline(self, sample_rate: int, channels: int, future_seconds: float | None = None,
                 chunk_seconds: float | None = None, vocal_pan: float | None = None) -> Pipeline:
        """A streaming vocals pipeline (used by the effects and `separate_file`).

        `vocal_pan` defaults to the separator's, or the centre when that is ``"auto"``.
        """
        _audio.check_rate(sample_rate)
        channels = _audio.check_count("channels", channels)
        m = self.model
        chunk = _audio.check_seconds("chunk_seconds", chunk_seconds) if chunk_seconds is not None else self.chunk_seconds
        if future_seconds is not None:
            future_seconds = _audio.check_seconds("future_seconds", future_seconds, zero=True)
        frames = max(1, int(round(chunk * m.sample_rate / m.hop)))
        future = None if future_seconds is None else int(np.ceil(future_seconds * m.sample_rate / m.hop))
        if vocal_pan is None:
            vocal_pan = 0.0 if self.vocal_pan == "auto" else self.vocal_pan
        return Pipeline(m, int(sample_rate), channels, frames, future, per_channel=self.per_channel, pan=vocal_pan)

    def _auto_pan(self, channels: int, length: int, rate: int, span: Callable[[int, int], np.ndarray]) -> float | None:
        """With ``vocal_pan="auto"``, the pan to separate a whole stereo signal with, found from
        the excerpts `span(start, stop)` gives; otherwise None (the separator's own)."""
        if not (self.vocal_pan == "auto" and channels == 2 and self.model.channels == 2 and not self.per_channel):
            return None
        return panning.steer(self._pan_of(length, rate, span))

    def _pan_of(self, length: int, rate: int, span: Callable[[int, int], np.ndarray]) -> float:
        """The voice's pan from the excerpts `span(start, stop)` gives of a `length`-sample stereo signal."""
        m = self.model
        spans = panning.excerpt_spans(length, int(panning.EXCERPT_FRAMES * m.hop * rate / m.sample_rate))
        excerpts = [span(a, b) for a, b in spans]
        if rate != m.sample_rate:
            excerpts = [np.concatenate([r.process(x), r.process(None)], axis=1)
                        for x in excerpts for r in [_resampler(rate, m.sample_rate, 2)]]
        return panning.estimate(m, excerpts)

    def _pan_for(self, x: np.ndarray, rate: int) -> float | None:
        """`_auto_pan` of a whole (channels, n) signal in hand."""
        return self._auto_pan(x.shape[0], x.shape[1], rate, lambda a, b: x[:, a:b])

    def find_vocal_pan(self, audio: np.ndarray, sample_rate: float) -> float:
        """Where the voice of a stereo signal sits: -1 hard left, 0 centre, 1 hard right.

        What ``vocal_pan="auto"`` steers by (it leaves estimates within 0.4 of the
        centre as they are). `audio` is laid out as for `separate`.

        Example::

            >>> import numpy as np
            >>> from acapella import Separator
            >>> t = np.arange(44100 * 4) / 44100
            >>> tone = np.sin(2 * np.pi * 220 * t).astype(np.float32)
            >>> -1.0 <= Separator().find_vocal_pan(np.stack([tone, 0 * tone]), 44100) <= 1.0
            True
        """
        x, _ = _audio.to_channels_first(audio)
        rate = _audio.check_rate(sample_rate)
        if x.shape[0] != 2:
            raise ValueError(f"finding the voice's pan needs a stereo signal, got {x.shape[0]} channel(s)")
        return self._pan_of(x.shape[1], rate, lambda a, b: x[:, a:b])

    def _block(self, sample_rate: int) -> int:
        return max(1, int(self.chunk_seconds * sample_rate))

    def separate(self, audio: np.ndarray, sample_rate: float) -> dict[str, np.ndarray]:
        """Separates one signal held in memory.

        `audio` may be 1-D (mono), ``(channels, samples)`` or ``(samples, channels)``
        (the smaller dimension is taken as channels; a square array as
        channels-first). float32 and float64 are used as they are; int16 and int32
        are scaled to [-1, 1) by 2**15 and 2**31, uint8 by its offset and 2**7.
        Any sample rate works. Returns ``{"vocals", "accompaniment"}``, each a
        float32 array with the input's shape and layout, summing to the input.
        """
        x, layout = _audio.to_channels_first(audio)
        rate = _audio.check_rate(sample_rate)
        pipe = self.pipeline(rate, x.shape[0], vocal_pan=self._pan_for(x, rate))
        block = self._block(rate)
        parts = [pipe.push(x[:, i:i + block]) for i in range(0, x.shape[1], block)]
        parts.append(pipe.finish())
        vocals = np.concatenate(parts, axis=1)
        return {"vocals": layout.restore(vocals), "accompaniment": layout.restore(x - vocals)}

    def separate_file(self, path: str | os.PathLike, out_dir: str | os.PathLike,
                      stems: Iterable[str] = STEMS, format: str = "wav", force: bool = False,
                      progress: Callable[[int], None] | None = None) -> dict[str, Path]:
        """Separates an audio file block by block and writes ``out_dir/<stem>.<format>``.

        The file never sits whole in memory. Outputs are written to temporary
        files in `out_dir` and renamed when complete, so no partial file is left
        behind by an error or Ctrl-C. Existing outputs are kept unless `force`.
        `progress`, if given, is called with the number of input frames done.
        Returns the paths written, by stem.

        Example::

            >>> Separator().separate_file("song.flac", "stems/song")  # doctest: +SKIP
            {'vocals': PosixPath('stems/song/vocals.wav'), 'accompaniment': ...}
        """
        from acapella import files

        stems = parse_stems(stems)
        fmt = files.check_format(format)
        out_dir = Path(out_dir)
        targets = {s: out_dir / f"{s}.{fmt}" for s in stems}
        if not force:
            existing = [str(p) for p in targets.values() if p.exists()]
            if existing:
                raise FileExistsError(f"output exists: {existing[0]} (use force=True / --force to overwrite)")
        with files.Reader(path) as reader:
            rate, channels = reader.sample_rate, reader.channels
            pipe = self.pipeline(rate, channels, vocal_pan=self._auto_pan(channels, reader.frames, rate, reader.span))
            with files.AtomicWriters(targets, rate, channels, fmt) as writers:
                for block in reader.blocks(self._block(rate)):
                    v = pipe.push(block)
                    writers.write_pair(block, v)
                    if progress:
                        progress(block.shape[1])
                writers.write_pair(None, pipe.finish())
        return targets
