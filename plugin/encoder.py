"""The child process that encodes the stems of one input (run as a script by `acapella.files.AtomicWriters`).

libsndfile can fail in ways a process does not survive (an OGG write on a full
disk ends in a segmentation fault), so encoding happens here, and a crash fails
one input instead of the run.

On stdin: one JSON line ``{"paths", "rate", "channels", "format", "subtype"}``;
then blocks, each a 16-byte header (stem index, frames; little-endian int64)
and ``frames * channels`` interleaved float32 samples; a header with index -1 and
a JSON line of each stem's frames ends the stream. Each file is then closed,
opened again and decoded in full, and its frames, channels and rate checked. On
stdout: one JSON line after opening (``{"ok": true}`` or ``{"error", "stem"}``)
and one after the check.
"""
import json
import os
import struct
import sys

# Run as a script: its own folder (the package's modules) must not shadow anything imported.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402


def _say(**msg) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def _reason(exc: BaseException) -> str:
    return (getattr(exc, "error_string", None) or str(exc) or type(exc).__name__).strip().splitlines()[0]


def _read_exactly(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


def _verify(path: str, frames: int, channels: int, rate: int) -> str | None:
    """Why the written file is not what was written, or None."""
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            if f.channels != channels or f.samplerate != rate:
                return f"written as {f.channels} channels at {f.samplerate} Hz, not {channels} at {rate} Hz"
            if f.frames != frames:
                return f"holds {f.frames} frames, not the {frames} written"
            decoded = 0
            while True:
                block = f.read(1 << 16, dtype="float32", always_2d=True)
                decoded += block.shape[0]
                if block.shape[0] < 1 << 16:
                    break
    except Exception as exc:  # libsndfile's own error types
        return f"cannot be read back ({_reason(exc)})"
    if decoded != frames:
        return f"decodes to {decoded} frames, not the {frames} written"
    return None


def main() -> int:
    stdin = sys.stdin.buffer
    head = json.loads(stdin.readline())
    channels, rate = int(head["channels"]), int(head["rate"])
    files = []
    for i, path in enumerate(head["paths"]):
        try:
            files.append(sf.SoundFile(os.fsencode(path), "w", samplerate=rate, channels=channels,
                                      format=head["format"], subtype=head["subtype"]))
        except Exception as exc:
            _say(error=_reason(exc), stem=i)
            return 1
    _say(ok=True)
    while True:
        try:
            index, n = struct.unpack("<qq", _read_exactly(stdin, 16))
        except EOFError:
            return 1  # the parent went away: it publishes nothing, so neither does this
        if index < 0:
            expected = json.loads(stdin.readline())
            break
        try:
            block = np.frombuffer(_read_exactly(stdin, n * channels * 4), dtype=np.float32).reshape(n, channels)
        except EOFError:
            return 1
        try:
            files[index].write(block)
        except Exception as exc:
            _say(error=_reason(exc), stem=index)
            return 1
    for i, f in enumerate(files):
        try:
            f.close()  # FLAC's final flush happens here, and can fail on a full disk
        except Exception as exc:
            _say(error=f"closing it failed ({_reason(exc)})", stem=i)
            return 1
    for i, path in enumerate(head["paths"]):
        problem = _verify(path, int(expected[i]), channels, rate)
        if problem:
            _say(error=f"the written file {problem}", stem=i)
            return 1
    _say(ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
