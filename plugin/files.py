"""Reading audio files in blocks and writing stems atomically."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

# Write formats: soundfile format and subtype. WAV stays float so the written
# stems still sum to the input exactly.
FORMATS = {
    "wav": ("WAV", "FLOAT"),
    "flac": ("FLAC", "PCM_24"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
# Extensions searched for in folders: what soundfile or pedalboard.io can read.
AUDIO_EXTENSIONS = {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                    ".m4a", ".mp4", ".aac", ".caf", ".w64", ".rf64", ".au", ".snd", ".bwf"}


# Containers libsndfile reads itself: when it refuses one, the file is broken, and pedalboard.io
# (which reads a broken header's length and returns silence) must not stand in for it.
_LIBSNDFILE_NATIVE = {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".caf", ".w64",
                      ".rf64", ".au", ".snd", ".bwf"}


def _check_finite(path: Path, block: np.ndarray, offset: int, sample_rate: int) -> None:
    """Refuses NaN or infinite samples (float files from a broken render), which would turn whole stems into NaN."""
    if not np.isfinite(block).all():
        at = offset + int(np.argmin(np.isfinite(block).all(axis=0)))
        raise ValueError(f"cannot read {path}: NaN or infinite samples from {at / sample_rate:.2f} s "
                         f"(sample {at}): repair or re-export the file")


# mkstemp creates files readable by their owner only; finished outputs get the usual mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def publish(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Moves a finished temporary file onto its target in one step."""
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, target)


def check_format(fmt: str) -> str:
    f = str(fmt).lower().lstrip(".")
    if f not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return f


class Reader:
    """Blocks of float32 (channels, n) from any file soundfile or pedalboard.io can read."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such file: {self.path}")
        if self.path.is_dir():
            raise IsADirectoryError(f"is a folder, not an audio file: {self.path}")
        if not os.access(self.path, os.R_OK):
            raise PermissionError(13, "Permission denied", str(self.path))
        self._sf = self._pb = None
        try:
            # As bytes: a name that is not valid UTF-8 (an old disk, a zip) reaches libsndfile as it is.
            self._sf = sf.SoundFile(os.fsencode(self.path))
            self.sample_rate, self.channels = self._sf.samplerate, self._sf.channels
            self.frames = self._sf.frames
        except Exception as first:
            reason = str(first).split(":")[-1].strip() or type(first).__name__
            if "does not exist" in reason:  # libsndfile says so of an MP3 it cannot parse
                reason = "format not recognised, or the file is damaged"
            if self.path.suffix.lower() in _LIBSNDFILE_NATIVE:
                raise ValueError(f"cannot read {self.path}: not a readable audio file ({reason})") from None
            try:  # pedalboard reaches what libsndfile cannot (m4a through the platform's decoder)
                from pedalboard.io import AudioFile

                self._pb = AudioFile(str(self.path))
                self.sample_rate, self.channels = int(self._pb.samplerate), self._pb.num_channels
                self.frames = self._pb.frames
            except Exception:
                raise ValueError(f"cannot read {self.path}: not a readable audio file ({reason})") from None
        if self.channels < 1 or self.sample_rate <= 0:
            raise ValueError(f"cannot read {self.path}: it reports {self.channels} channels at {self.sample_rate} Hz")

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """Blocks of `size` frames; refuses NaN or infinite samples (float files from a broken render),
        which would turn whole stems into NaN, before they reach the network."""
        done = 0
        for block in self._read(size):
            _check_finite(self.path, block, done, self.sample_rate)
            done += block.shape[1]
            yield block

    def span(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as float32 (channels, n), read ahead of `blocks` (which start from the top)."""
        try:
            if self._sf is not None:
                self._sf.seek(start)
                x = self._sf.read(stop - start, dtype="float32", always_2d=True).T
                self._sf.seek(0)
            else:
                self._pb.seek(start)
                x = self._pb.read(stop - start)
                self._pb.seek(0)
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            raise ValueError(f"cannot read {self.path}: file is truncated or corrupt ({exc})") from None
        x = np.ascontiguousarray(x, dtype=np.float32)
        _check_finite(self.path, x, start, self.sample_rate)
        return x

    def _read(self, size: int) -> Iterator[np.ndarray]:
        try:
            if self._sf is not None:
                for block in self._sf.blocks(blocksize=size, dtype="float32", always_2d=True):
                    yield np.ascontiguousarray(block.T)
            else:
                while self._pb.tell() < self._pb.frames:
                    block = self._pb.read(size)
                    if block.shape[1] == 0:
                        break
                    yield np.ascontiguousarray(block, dtype=np.float32)
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            raise ValueError(f"cannot read {self.path}: file is truncated or corrupt ({exc})") from None

    def close(self) -> None:
        for f in (self._sf, self._pb):
            if f is not None:
                f.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AtomicWriters:
    """Writes the stems of one input to temporary files, renamed into place on success.

    On any error, Ctrl-C included, the temporary files are removed and no
    target is touched.
    """

    def __init__(self, targets: dict[str, Path], sample_rate: int, channels: int, fmt: str):
        self.targets, self.rate, self.channels, self.fmt = targets, sample_rate, channels, fmt
        self._files: dict[str, tuple[str, sf.SoundFile]] = {}
        self._pending = np.zeros((channels, 0), np.float32)

    def __enter__(self) -> "AtomicWriters":
        major, subtype = FORMATS[self.fmt]
        try:
            for stem, target in self.targets.items():
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
                os.close(fd)
                self._files[stem] = (tmp, None)
                f = sf.SoundFile(os.fsencode(tmp), "w", samplerate=self.rate, channels=self.channels, format=major,
                                 subtype=subtype)
                self._files[stem] = (tmp, f)
        except BaseException as exc:
            self._discard()
            if isinstance(exc, (sf.LibsndfileError, RuntimeError, ValueError)):
                # libsndfile's own message names the temporary file; its reason alone is what helps.
                reason = getattr(exc, "error_string", None) or str(exc)
                raise ValueError(f"cannot write {target}: {self.fmt} at {self.rate} Hz with {self.channels} channels "
                                 f"fails ({reason}): choose another --format") from None
            raise
        return self

    def write_pair(self, mixture: np.ndarray | None, vocals: np.ndarray) -> None:
        """Takes input samples and the vocals that are final so far; writes both stems."""
        if mixture is not None:
            self._pending = np.concatenate([self._pending, mixture], axis=1)
        n = vocals.shape[1]
        if not n:
            return
        stems = {"vocals": vocals, "accompaniment": self._pending[:, :n] - vocals}
        self._pending = self._pending[:, n:]
        for stem, (_, f) in self._files.items():
            try:
                f.write(stems[stem].T)
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                # libsndfile says only "System error." for a full disk; the free space says what it was.
                target = self.targets[stem]
                free = shutil.disk_usage(target.parent).free / 1e6
                reason = getattr(exc, "error_string", None) or str(exc)
                raise OSError(f"cannot write {target}: {reason} ({free:.0f} MB free on its disk)") from None

    def _discard(self) -> None:
        for tmp, f in self._files.values():
            if f is not None:
                try:
                    f.close()
                except Exception:
                    pass
            Path(tmp).unlink(missing_ok=True)
        self._files.clear()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            for tmp, f in self._files.values():
                f.close()
            for stem, (tmp, _) in self._files.items():
                publish(tmp, self.targets[stem])
        except BaseException:
            self._discard()
            raise
