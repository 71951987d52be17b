"""`Separator`: the one entry point that the CLI, the effects and the host adapters share."""
from __future__ import annotations

import numbers
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from acapella import layout, panning
from acapella.onnx_model import OnnxModel
from acapella.pipeline import Pipeline, channel_groups
from acapella.stems import STEMS, StemStream, parse_stems
from acapella.stream import CHUNK_SECONDS

#: Model channels (a stereo pair) that one window and one block are sized for; more
#: channels get proportionally shorter windows and blocks, so memory does not grow.
BUDGET_CHANNELS = 2
#: The shortest network window, in frames, that more channels shrink a window to
#: (the receptive field on both sides then costs about twice the window's own work).
MIN_WINDOW_FRAMES = 256


class Separator:
    """Splits audio into vocals and accompaniment with a bundled ONNX model.

    The model is loaded once; `separate`, `separate_blocks` and `separate_file`
    may be called from several threads at once.

    Audio at any sample rate from 1 kHz to 768 kHz is taken (other rates are
    refused with a ValueError) and resampled to the model's rate and back.
    `chunk_seconds` is the audio per network call (and per input block): longer
    calls waste less work on the network's context, shorter ones use less
    memory; the output does not depend on it. Beyond two channels, windows and
    blocks get proportionally shorter, so memory stays that of a stereo song.
    Float input is expected in -1..1: a signal peaking far above that gets one
    warning that names the likely cause, and NaN, infinite or absurdly large
    samples (`acapella.layout.MAX_PEAK`) are refused with a ValueError.

    `vocal_pan` says where the voice sits in a stereo song: -1 hard left, 0 the
    centre, 1 hard right. The stereo network learned from centred voices and
    misses most of one panned to a side, so the stereo field is turned to bring
    the voice to the centre, and the vocals turned back (`acapella.panning`).
    With ``"auto"`` (the default), `separate` and `separate_file` first find
    where it sits from three 6-second excerpts, each channel separated on its
    own (about a tenth more work on a 4-minute song), and leave a voice within
    0.4 of the centre as it is; streams (`pipeline`, the effects) cannot look
    ahead and take the centre unless given a number. `find_vocal_pan` and
    `steering_pan` give the estimate and the pan used.

    `per_channel=True` separates each channel on its own, as a mono song, for
    twice the network's work on stereo: another way to reach a voice on one
    side; on centred voices it scores lower (see the model card).

    `post_step` is a hook for experiments with the masking rule (see
    `acapella.stream.SpectralStream`); None, the default, applies the mask.

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
                 vocal_pan: float | str = "auto", *,
                 post_step: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        chunk_seconds = layout.check_seconds("chunk_seconds", chunk_seconds)
        if vocal_pan != "auto":
            if isinstance(vocal_pan, bool) or not isinstance(vocal_pan, numbers.Real) or not -1 <= vocal_pan <= 1:
                raise ValueError(f"vocal_pan must be 'auto' or a number from -1 (hard left) to 1 (hard right), got {vocal_pan!r}")
            vocal_pan = float(vocal_pan)
        if post_step is not None and not callable(post_step):
            raise ValueError(f"post_step must be a function of (mask, spectra) or None, got {post_step!r}")
        self.model = OnnxModel(model, threads=threads)
        self.chunk_seconds = float(chunk_seconds)
        self.per_channel = bool(per_channel)
        self.vocal_pan = vocal_pan
        self.post_step = post_step

    @property
    def sample_rate(self) -> int:
        """The rate the model runs at; other rates are resampled to it and back."""
        return self.model.sample_rate

    def _share(self, channels: int) -> float:
        """How many stereo pairs' worth of model channels `channels` input channels make (at least 1)."""
        routed = len(channel_groups(channels, self.model.channels, self.per_channel))
        return max(1.0, routed / BUDGET_CHANNELS)

    def block_size(self, sample_rate: int, channels: int) -> int:
        """Input samples per block for a stream of `channels` at `sample_rate`.

        `chunk_seconds` of audio, shortened beyond a stereo pair's worth of
        channels so that a block holds about as many samples as a stereo one.
        `separate_blocks` cuts longer blocks to this size itself; a reader that
        reads blocks of it keeps its own memory bounded too.
        """
        rate = layout.check_rate(sample_rate)
        channels = layout.check_count("channels", channels)
        return max(1, int(self.chunk_seconds * rate / self._share(channels)))

    def _window_frames(self, channels: int, chunk_seconds: float) -> int:
        m = self.model
        frames = max(1, int(round(chunk_seconds * m.sample_rate / m.hop)))
        return max(min(frames, MIN_WINDOW_FRAMES), int(np.ceil(frames / self._share(channels))))

    def pipeline(self, sample_rate: int, channels: int, future_seconds: float | None = None,
                 chunk_seconds: float | None = None, vocal_pan: float | None = None) -> Pipeline:
        """A streaming vocals pipeline (`acapella.pipeline.Pipeline`) for one stream.

        `chunk_seconds` (default: the separator's) sets the network window;
        `future_seconds` the look-ahead (default: the whole receptive field, the
        exact output). `vocal_pan` defaults to the separator's, or the centre
        when that is ``"auto"``.
        """
        return self._pipeline(sample_rate, channels, future_seconds, chunk_seconds, vocal_pan)

    def _pipeline(self, sample_rate, channels, future_seconds=None, chunk_seconds=None, vocal_pan=None,
                  per_channel: bool | None = None, warn_levels: bool = True) -> Pipeline:
        rate = layout.check_rate(sample_rate)
        channels = layout.check_count("channels", channels)
        m = self.model
        chunk = layout.check_seconds("chunk_seconds", chunk_seconds) if chunk_seconds is not None else self.chunk_seconds
        if future_seconds is not None:
            future_seconds = layout.check_seconds("future_seconds", future_seconds, zero=True)
        future = None if future_seconds is None else int(np.ceil(future_seconds * m.sample_rate / m.hop))
        if vocal_pan is None:
            vocal_pan = 0.0 if self.vocal_pan == "auto" else self.vocal_pan
        per_channel = self.per_channel if per_channel is None else per_channel
        return Pipeline(m, rate, channels, self._window_frames(channels, chunk), future, per_channel=per_channel,
                        pan=vocal_pan, post_step=self.post_step, warn_levels=warn_levels)

    def stem_stream(self, sample_rate: int, channels: int, stems: Iterable[str] = STEMS,
                    vocal_pan: float | None = None, future_seconds: float | None = None,
                    chunk_seconds: float | None = None, warn_levels: bool = True) -> StemStream:
        """A stream of aligned stems (`acapella.stems.StemStream`) over a `pipeline` of these settings."""
        pipe = self._pipeline(sample_rate, channels, future_seconds, chunk_seconds, vocal_pan, warn_levels=warn_levels)
        return StemStream(pipe, stems)

    # -- where the voice sits -------------------------------------------------------------

    def _estimate_pan(self, length: int, rate: int, read: Callable[[int, int], np.ndarray]) -> float:
        """The voice's pan from the excerpts `read(start, stop)` gives of a `length`-sample stereo signal."""
        m = self.model
        # Each channel is separated on its own, as a mono song, through the engine.
        pipe = self._pipeline(rate, 2, per_channel=True, vocal_pan=0.0, warn_levels=False)
        spans = panning.excerpt_spans(length, int(panning.EXCERPT_FRAMES * m.hop * rate / m.sample_rate))
        energy = np.zeros(2)
        for a, b in spans:
            energy += pipe.vocal_energy(np.ascontiguousarray(read(a, b), dtype=np.float32))
        return panning.pan_of_energies(energy)

    def find_vocal_pan(self, audio: np.ndarray, sample_rate: float) -> float:
        """Where the voice of a stereo signal sits: -1 hard left, 0 centre, 1 hard right.

        What ``vocal_pan="auto"`` steers by (it leaves estimates within 0.4 of the
        centre as they are; `steering_pan`). `audio` is laid out as for `separate`.

        Example::

            >>> import numpy as np
            >>> from acapella import Separator
            >>> t = np.arange(44100 * 4) / 44100
            >>> tone = np.sin(2 * np.pi * 220 * t).astype(np.float32)
            >>> -1.0 <= Separator().find_vocal_pan(np.stack([tone, 0 * tone]), 44100) <= 1.0
            True
        """
        x, _ = layout.to_channels_first(audio)
        rate = layout.check_rate(sample_rate)
        if x.shape[0] != 2:
            raise ValueError(f"finding the voice's pan needs a stereo signal, got {x.shape[0]} channel(s)")
        return self._estimate_pan(x.shape[1], rate, lambda a, b: x[:, a:b])

    def steering_pan(self, read: Callable[[int, int], np.ndarray], length: int, sample_rate: int,
                     channels: int) -> float:
        """The `vocal_pan` that `separate` uses for a whole signal, read in excerpts.

        With ``vocal_pan="auto"`` on a stereo signal and model, the voice's place
        found from the excerpts ``read(start, stop)`` returns, as (channels, n)
        float32, of the `length`-sample signal, or 0 within 0.4 of the centre;
        otherwise the separator's own number (0 for ``"auto"``). For files,
        pass the reader's span reader; then give the result to `separate_blocks`.
        """
        if not (self.vocal_pan == "auto" and channels == 2 and self.model.channels == 2 and not self.per_channel):
            return 0.0 if self.vocal_pan == "auto" else self.vocal_pan
        return panning.steer(self._estimate_pan(length, layout.check_rate(sample_rate), read))

    # -- separating -----------------------------------------------------------------------

    def separate_blocks(self, blocks: Iterable[np.ndarray], sample_rate: int, stems: Iterable[str] = STEMS,
                        vocal_pan: float | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Separates a stream of (channels, n) float32 blocks; yields aligned ``{stem: block}`` dicts.

        Every yielded dict holds each of `stems` (default: all) as a (channels, m)
        float32 block covering the same samples; concatenated, they are exactly
        what `separate` returns for the whole signal, as many samples as went
        in, and ``vocals + accompaniment`` is the input. The first block sets the
        channel count; blocks may have any length (long ones are cut into
        `block_size` pieces), and only about `chunk_seconds` of audio is held at
        once. `vocal_pan` (default: the separator's, or the centre for
        ``"auto"``, since a stream cannot look ahead) is best taken from
        `steering_pan`.

        Example::

            >>> import numpy as np
            >>> from acapella import Separator
            >>> sep = Separator()
            >>> song = np.random.default_rng(0).standard_normal((2, 100_000)).astype(np.float32) * 0.1
            >>> parts = list(sep.separate_blocks((song[:, i:i + 30_000] for i in range(0, 100_000, 30_000)), 44100))
            >>> vocals = np.concatenate([p["vocals"] for p in parts], axis=1)
            >>> accompaniment = np.concatenate([p["accompaniment"] for p in parts], axis=1)
            >>> bool(np.allclose(vocals + accompaniment, song, atol=1e-6))
            True
        """
        stems = parse_stems(stems)
        rate = layout.check_rate(sample_rate)
        stream = size = None
        for block in blocks:
            if getattr(block, "ndim", 0) != 2:
                raise ValueError(f"separate_blocks takes (channels, n) blocks, got shape {getattr(block, 'shape', None)}")
            if stream is None:
                stream = self.stem_stream(rate, block.shape[0], stems, vocal_pan=vocal_pan)
                size = self.block_size(rate, block.shape[0])
            for i in range(0, block.shape[1], size):
                out = stream.push(block[:, i:i + size] if block.shape[1] > size else block)
                if out[stems[0]].shape[1]:
                    yield out
        if stream is not None:
            out = stream.finish()
            if out[stems[0]].shape[1]:
                yield out

    def separate(self, audio: np.ndarray, sample_rate: float) -> dict[str, np.ndarray]:
        """Separates one signal held in memory.

        `audio` may be 1-D (mono), ``(channels, samples)`` or ``(samples, channels)``
        (the smaller dimension is taken as channels; a square array as
        channels-first). float32 and float64 are used as they are; int16 and int32
        are scaled to [-1, 1) by 2**15 and 2**31, uint8 by its offset and 2**7.
        Rates from 1 kHz to 768 kHz work. Returns ``{"vocals", "accompaniment"}``,
        each a float32 array with the input's shape and layout, summing to the input.
        """
        x, shape = layout.to_channels_first(audio)
        rate = layout.check_rate(sample_rate)
        warning = layout.check_samples(x)
        if warning:
            warnings.warn(warning, stacklevel=2)
        pan = self.steering_pan(lambda a, b: x[:, a:b], x.shape[1], rate, x.shape[0])
        stream = self.stem_stream(rate, x.shape[0], vocal_pan=pan, warn_levels=False)
        stems = stream.whole(x, self.block_size(rate, x.shape[0]))
        return {s: shape.restore(y) for s, y in stems.items()}

    def separate_file(self, path: str | os.PathLike, out_dir: str | os.PathLike,
                      stems: Iterable[str] = STEMS, format: str = "wav", force: bool = False,
                      progress: Callable[[int], None] | None = None) -> dict[str, Path]:
        """Separates an audio file block by block and writes ``out_dir/<stem>.<format>``.

        The file never sits whole in memory: it is read in `block_size` blocks
        through `separate_blocks` and written by `acapella.outputs.separate_into`,
        to temporary files in `out_dir` that are verified and renamed when
        complete, so no partial file is left behind by an error or Ctrl-C.
        Existing outputs are kept unless `force`. `progress`, if given, is
        called with the number of frames done.
        Returns the paths written, by stem.

        Example::

            >>> Separator().separate_file("song.flac", "stems/song")  # doctest: +SKIP
            {'vocals': PosixPath('stems/song/vocals.wav'), 'accompaniment': ...}
        """
        from acapella import files, outputs

        stems = parse_stems(stems)
        fmt = files.check_format(format)
        out_dir = Path(out_dir)
        targets = {s: out_dir / f"{s}.{fmt}" for s in stems}
        if not force:
            existing = [str(p) for p in targets.values() if p.exists()]
            if existing:
                raise FileExistsError(f"output exists: {existing[0]} (use force=True / --force to overwrite)")
        outputs.separate_into(self, Path(path), targets, fmt, progress=progress)
        return targets
