"""Audio files: reading them in blocks, and writing outputs atomically and verified.

`Reader` yields only samples the decoder really gave: a file shorter than its
header says (a half-downloaded MP3, a cut FLAC) ends where its audio does, with
one warning. `AtomicWriters` encodes stems in a child process (`acapella.encoder`),
so that libsndfile failing on a full disk ends that process and not the run;
each stem is closed, decoded again in full and checked for its frames and
channels before it is renamed into place. `atomic_output` is the one way any
output reaches its name: through a locked temporary beside it, which a later run
removes (`sweep_temporaries`) once no live process holds it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterator

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
# Bytes per sample a stem typically takes, for the free-space check before writing:
# exact for float WAV, what music usually compresses to for the others.
TYPICAL_BYTES = {"wav": 4.0, "flac": 2.0, "ogg": 0.15, "mp3": 0.2}
# Extensions searched for in folders: what soundfile or pedalboard.io can read.
AUDIO_EXTENSIONS = {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                    ".m4a", ".mp4", ".aac", ".caf", ".w64", ".rf64", ".au", ".snd", ".bwf"}

# Containers libsndfile reads itself: when it refuses one, the file is broken, and pedalboard.io
# (which reads a broken header's length and returns silence) must not stand in for it.
_LIBSNDFILE_NATIVE = {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".caf", ".w64",
                      ".rf64", ".au", ".snd", ".bwf"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f\udc80-\udcff]")


def escape(name: str | os.PathLike | bytes) -> str:
    """A path as one printable line: control characters (a newline in a file name) as escapes.

    >>> print(escape("a\\nb.wav"), escape(b"caf\\xe9.wav"))
    a\\nb.wav caf\\xe9.wav
    """
    text = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    # A byte that is not UTF-8 (decoded by os.fsdecode as a lone surrogate) shows as \xNN too.
    return _CONTROL.sub(lambda m: {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(m[0], f"\\x{ord(m[0]) & 0xff:02x}"),
                        text)


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def _check_finite(path: Path, block: np.ndarray, offset: int, sample_rate: int) -> None:
    """Refuses NaN or infinite samples (float files from a broken render), which would turn whole stems into NaN."""
    if not np.isfinite(block).all():
        at = offset + int(np.argmin(np.isfinite(block).all(axis=0)))
        raise ValueError(f"cannot read {escape(path)}: NaN or infinite samples from {at / sample_rate:.2f} s "
                         f"(sample {at}): repair or re-export the file")


def check_format(fmt: str) -> str:
    f = str(fmt).lower().lstrip(".")
    if f not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return f


# --- temporaries and atomic outputs ---------------------------------------------

_PART = re.compile(r"^\.(?P<name>.+)\.[0-9A-Za-z_]+\.part$")


class Temporary:
    """A hidden ``.<name>.<random>.part`` file beside `target`, locked while this process lives.

    The lock (``flock``) is what `sweep_temporaries` tests: the kernel drops it when
    the process ends in any way, SIGKILL and power loss included. The file is
    created with the usual permissions (the umask's), so publishing needs no chmod.
    """

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        for _ in range(100):
            self.path = self.target.parent / f".{self.target.name}.{secrets.token_hex(4)}.part"
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                break
            except FileExistsError:
                continue
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def publish(self) -> None:
        """Moves the finished temporary onto its target in one step."""
        os.replace(self.path, self.target)
        self._close()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path to write `target`'s content to; on success it replaces `target` in one step.

    On any error, Ctrl-C included, the temporary is removed and `target` is untouched.
    """
    tmp = Temporary(target)
    try:
        yield str(tmp.path)
        tmp.publish()
    except BaseException:
        tmp.discard()
        raise


def is_temporary(name: str) -> bool:
    """Whether a file name is one of `Temporary`'s."""
    return _PART.match(name) is not None


def sweep_temporaries(folder: str | os.PathLike, targets: list[str] | None = None) -> list[Path]:
    """Removes the temporaries in `folder` that no live process holds (left by a killed run); returns them.

    With `targets`, only the temporaries of outputs of those names.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _PART.match(name)
        if not m or (targets is not None and m["name"] not in targets):
            continue
        path = Path(folder) / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live writer holds it
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


# --- reading --------------------------------------------------------------------


class Reader:
    """Blocks of float32 (channels, n) from any file soundfile or pedalboard.io can read.

    `frames` is the length the file's header gives; the blocks stop where the
    decoder does, and a file that ends sooner than its header says gets one
    warning through `warn` (default: `warnings.warn`).
    """

    def __init__(self, path: str | os.PathLike, warn: Callable[[str], None] | None = None):
        self.path = Path(path)
        self._warn = warn or _warn
        name = escape(self.path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such file: {name}")
        if self.path.is_dir():
            raise IsADirectoryError(f"is a folder, not an audio file: {name}")
        if not os.access(self.path, os.R_OK):
            raise PermissionError(13, "Permission denied", str(self.path))
        self._sf = self._pb = None
        self.decoded = 0
        self._promised = None
        try:
            # As bytes: a name that is not valid UTF-8 (an old disk, a zip) reaches libsndfile as it is.
            self._sf = sf.SoundFile(os.fsencode(self.path))
            self.sample_rate, self.channels = self._sf.samplerate, self._sf.channels
            self.frames = self._sf.frames
            self._promised = _promised_frames(self._sf)
        except Exception as first:
            reason = str(first).split(":")[-1].strip() or type(first).__name__
            if "does not exist" in reason:  # libsndfile says so of an MP3 it cannot parse
                reason = "format not recognised, or the file is damaged"
            if self.path.suffix.lower() in _LIBSNDFILE_NATIVE:
                raise ValueError(f"cannot read {name}: not a readable audio file ({reason})") from None
            try:  # pedalboard reaches what libsndfile cannot (m4a through the platform's decoder)
                from pedalboard.io import AudioFile

                self._pb = AudioFile(str(self.path))
                self.sample_rate, self.channels = int(self._pb.samplerate), self._pb.num_channels
                self.frames = self._pb.frames
            except Exception:
                raise ValueError(f"cannot read {name}: not a readable audio file ({reason})") from None
        if self.channels < 1 or self.sample_rate <= 0:
            raise ValueError(f"cannot read {name}: it reports {self.channels} channels at {self.sample_rate} Hz")

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """Blocks of `size` frames (the last one shorter); refuses NaN or infinite samples (float files from
        a broken render), which would turn whole stems into NaN, before they reach the network."""
        done = 0
        for block in self._read(max(1, int(size))):
            _check_finite(self.path, block, done, self.sample_rate)
            done += block.shape[1]
            self.decoded = done
            yield block
        if done == 0 and self.frames > 0:
            raise ValueError(f"cannot read {escape(self.path)}: no audio could be decoded (the file is damaged)")
        promised = max(self.frames, self._promised or 0)
        if done < promised:
            self._warn(f"{escape(self.path)} is shorter than its header says: {done / self.sample_rate:.2f} s of "
                       f"{promised / self.sample_rate:.2f} s decoded (truncated or damaged); "
                       "the stems end where its audio does")

    def span(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as float32 (channels, n), read ahead of `blocks` (which start from the top).

        Where the file ends before `stop`, fewer frames (the decoded ones only).
        """
        try:
            if self._sf is not None:
                self._sf.seek(start)
                x = self._sf.read(stop - start, dtype="float32", always_2d=True).T
                self._sf.seek(0)
            else:
                self._pb.seek(start)
                x = self._pb.read(stop - start)
                self._pb.seek(0)
        except (RuntimeError, sf.LibsndfileError, OSError):
            # Past the damage of a cut file: nothing decoded here (`blocks` says so once).
            x = np.zeros((self.channels, 0), np.float32)
            with contextlib.suppress(Exception):
                (self._sf or self._pb).seek(0)
        x = np.ascontiguousarray(x, dtype=np.float32)
        _check_finite(self.path, x, start, self.sample_rate)
        return x

    def _read(self, size: int) -> Iterator[np.ndarray]:
        if self._sf is not None:
            yield from self._read_libsndfile(size)
        else:
            yield from self._read_pedalboard(size)

    def _read_libsndfile(self, size: int) -> Iterator[np.ndarray]:
        # Not soundfile's blocks(): after a short read it yields its whole np.empty buffer.
        f, pos, careful = self._sf, 0, False
        while True:
            # After a decoder error (a cut FLAC), it is read again from where that read began in
            # steps of 256 frames on a fixed grid, up to the damage: the same end for any block size.
            step = (256 - pos % 256) if careful else size
            try:
                block = f.read(step, dtype="float32", always_2d=True)
            except (RuntimeError, sf.LibsndfileError):
                if careful:
                    return
                careful = True
                try:
                    f.seek(pos)
                except (RuntimeError, sf.LibsndfileError):
                    return
                continue
            n = block.shape[0]
            if n:
                pos += n
                yield np.ascontiguousarray(block.T)
            if n < step:
                return

    def _read_pedalboard(self, size: int) -> Iterator[np.ndarray]:
        # pedalboard pads a cut file with exact zeros up to its header's length (JUCE's way):
        # a run of exact zeros that begins right after audio at full level, and runs to the
        # end, was never decoded. Zeros are held back as a count until audio follows them.
        f, pending, last = self._pb, 0, 0.0
        try:
            while f.tell() < f.frames:
                block = np.ascontiguousarray(f.read(size), dtype=np.float32)
                if block.shape[1] == 0:
                    break
                sound = np.flatnonzero(np.any(block != 0, axis=0))
                if sound.size == 0:
                    pending += block.shape[1]
                    continue
                if pending:
                    yield from _zeros(self.channels, pending, size)
                    pending = 0
                end = sound[-1] + 1
                last = float(np.max(np.abs(block[:, sound[-1]])))
                yield block[:, :end]
                pending = block.shape[1] - end
        except (RuntimeError, OSError):
            return  # the decoder gave up: what came before it is all there is
        if pending and last < 1e-3:  # a fade to digital silence is the song's own
            yield from _zeros(self.channels, pending, size)

    def close(self) -> None:
        for f in (self._sf, self._pb):
            if f is not None:
                f.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _promised_frames(f: sf.SoundFile) -> int | None:
    """The frames a cut WAV-like file's header promised: libsndfile quietly reads only those present,
    and says so only in its log (``data : 529200 (should be 264578)``)."""
    try:
        m = re.search(r"^data : (\d+) \(should be (\d+)\)", f.extra_info, re.M)
    except Exception:
        return None
    # A streamed WAV's placeholder size (0xFFFFFFFF, or 0) promises nothing.
    if not m or not int(m[2]) or int(m[1]) <= int(m[2]) or int(m[1]) >= 0xFFFFFFFF - 8:
        return None
    return int(f.frames * int(m[1]) / int(m[2]))


def _zeros(channels: int, n: int, size: int) -> Iterator[np.ndarray]:
    for i in range(0, n, size):
        yield np.zeros((channels, min(size, n - i)), np.float32)


# --- writing --------------------------------------------------------------------


def estimated_bytes(fmt: str, frames: int, channels: int) -> int:
    """Typical size of one stem of `frames` x `channels` samples in `fmt`."""
    return int(frames * channels * TYPICAL_BYTES[fmt]) + 65536


def check_space(folder: Path, fmt: str, frames: int, channels: int, stems: int) -> None:
    """Refuses, in one line, to start writing stems that the free space on `folder`'s disk cannot hold."""
    need = stems * estimated_bytes(fmt, frames, channels)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise OSError(f"cannot write {escape(folder)}: about {need / 1e6:.0f} MB needed for {stems} {fmt} "
                      f"stem(s), {free / 1e6:.0f} MB free on its disk; free some space or choose another -o")


def _free_mb(folder: Path) -> float:
    try:
        return shutil.disk_usage(folder).free / 1e6
    except OSError:
        return float("nan")


class AtomicWriters:
    """Writes the stems of one input to locked temporary files, renamed into place when all are verified.

    `write` takes ``{stem: (channels, n) float32}`` blocks, each stem's blocks in
    order. The encoding runs in a child process (`acapella.encoder`): a native
    crash or a full disk there fails this input with one line, and the process and
    the batch go on. Before any rename each file is closed, decoded again in full
    and checked for its frames and channels. With `frames` (the expected length)
    the free space is checked first. A stem that clips in an integer or lossy
    format gets one warning through `warn`. On any error, Ctrl-C included, the
    temporaries are removed and no target is touched.
    """

    def __init__(self, targets: dict[str, Path], sample_rate: int, channels: int, fmt: str,
                 frames: int | None = None, warn: Callable[[str], None] | None = None):
        self.targets = {s: Path(t) for s, t in targets.items()}
        self.rate, self.channels, self.fmt = int(sample_rate), int(channels), check_format(fmt)
        self.frames, self._warn = frames, warn or _warn
        self._tmps: dict[str, Temporary] = {}
        self._index = {s: i for i, s in enumerate(self.targets)}
        self.written = dict.fromkeys(self.targets, 0)
        self._peak = dict.fromkeys(self.targets, 0.0)
        self._child: subprocess.Popen | None = None
        self._log = None

    # The child's stderr goes to a file: read only when it fails, and never a pipe that could fill up.
    def _start(self) -> None:
        major, subtype = FORMATS[self.fmt]
        self._log = tempfile.TemporaryFile()
        script = Path(__file__).with_name("encoder.py")
        self._child = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=self._log, close_fds=True)
        head = {"paths": [os.fsdecode(t.path) for t in self._tmps.values()], "rate": self.rate,
                "channels": self.channels, "format": major, "subtype": subtype}
        self._send(json.dumps(head, ensure_ascii=True).encode() + b"\n")
        self._reply(None, opening=True)

    def _send(self, data: bytes) -> None:
        try:
            self._child.stdin.write(data)
        except (BrokenPipeError, OSError):
            self._reply(None)  # the child's own reason, or how it ended
            raise OSError(errno.EPIPE, "the encoder stopped")

    def _reply(self, stem: str | None, opening: bool = False) -> None:
        try:
            self._child.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        line = self._child.stdout.readline()
        try:
            msg = json.loads(line) if line else None
        except ValueError:
            msg = None
        if msg is not None and msg.get("ok"):
            return
        if msg is not None:
            at = list(self.targets)[msg["stem"]] if msg.get("stem") is not None else stem
            raise self._failure(at, msg.get("error") or "failed", opening)
        code = self._child.wait()
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        with contextlib.suppress(Exception):
            self._log.seek(0)
            last = [l for l in self._log.read().decode(errors="replace").splitlines() if l.strip()][-1:]
            if last:
                how += f": {last[0].strip()}"
        raise self._failure(stem, f"the encoder stopped ({how})")

    def _failure(self, stem: str | None, reason: str, opening: bool = False) -> OSError:
        target = self.targets[stem] if stem in self.targets else next(iter(self.targets.values()))
        if opening and self.fmt != "wav":
            return OSError(f"cannot write {escape(target)}: {self.fmt} at {self.rate} Hz with {self.channels} "
                           f"channels fails ({reason}): choose another --format")
        # libsndfile says only "System error." for a full disk; the free space says what it was.
        return OSError(f"cannot write {escape(target)}: {reason} ({_free_mb(target.parent):.0f} MB free on its disk)")

    def __enter__(self) -> "AtomicWriters":
        try:
            for stem, target in self.targets.items():
                if target.is_dir():
                    raise IsADirectoryError(f"cannot write {escape(target)}: it is a folder, not a stem file")
                target.parent.mkdir(parents=True, exist_ok=True)
            if self.frames:
                check_space(next(iter(self.targets.values())).parent, self.fmt, self.frames, self.channels,
                            len(self.targets))
            for stem, target in self.targets.items():
                self._tmps[stem] = Temporary(target)
            self._start()
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, stems: dict[str, np.ndarray]) -> None:
        """Appends one block to each stem named in `stems`, each (channels, n) float32."""
        for stem, block in stems.items():
            if stem not in self._index:
                continue
            block = np.asarray(block, dtype=np.float32)
            if block.ndim != 2 or block.shape[0] != self.channels:
                raise ValueError(f"{stem}: expected ({self.channels}, n) blocks, got shape {block.shape}")
            n = block.shape[1]
            if not n:
                continue
            if self.fmt != "wav":
                self._peak[stem] = max(self._peak[stem], float(np.max(np.abs(block))))
            self._send(struct.pack("<qq", self._index[stem], n) + np.ascontiguousarray(block.T).tobytes())
            self.written[stem] += n

    def _discard(self) -> None:
        if self._child is not None:
            with contextlib.suppress(Exception):
                self._child.kill()
            self._end_child()
        for tmp in self._tmps.values():
            tmp.discard()
        self._tmps.clear()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _end_child(self) -> None:
        for stream in (self._child.stdin, self._child.stdout):
            with contextlib.suppress(Exception):
                stream.close()
        with contextlib.suppress(Exception):
            self._child.wait()
        self._child = None

    def _finish(self) -> None:
        self._send(struct.pack("<qq", -1, 0) + json.dumps(list(self.written.values())).encode() + b"\n")
        self._reply(None)
        self._end_child()
        for stem, peak in self._peak.items():
            if peak > 1.0:
                self._warn(f"{escape(self.targets[stem])}: the {stem} peaks at {peak:.3f} "
                           f"({20 * np.log10(peak):+.1f} dBFS) clips in {self.fmt}; --format wav keeps it whole")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            self._finish()
            for stem, tmp in self._tmps.items():
                tmp.publish()
            self._tmps.clear()
        except BaseException:
            self._discard()
            raise
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
