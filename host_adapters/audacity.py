"""Separate the current Audacity selection into stems, in place.

``acapella audacity`` talks to a running Audacity through mod-script-pipe:
it exports the selection, separates it, and imports each stem as a new track
named ``<track name> - <stem>`` that starts where the selection starts. The
original tracks are not modified.

mod-script-pipe is a pair of named pipes, ``/tmp/audacity_script_pipe.to.<uid>``
(commands in) and ``/tmp/audacity_script_pipe.from.<uid>`` (replies out). Each
command is one line; each reply ends with ``BatchCommand finished: OK`` (or
``Failed!``) and an empty line. Audacity misbehaves in a few ways this module
guards against:

* The pipes outlive Audacity (crash, kill, or a module instance that never
  started its reader), so their existence proves nothing. Opening the write
  end with O_NONBLOCK fails with ENXIO when no process reads it.
* With an empty time selection, ``Export2`` still reports success and writes a
  file with no frames.
* A command that opens a dialog (``Import2`` of a missing file does) never
  answers, so every read has a deadline.
* When a client disconnects, Audacity's pipe server deletes both pipes and
  makes new ones, so for a moment after another client (or our own previous
  connection) leaves, the pipes are missing, or unread, or the old ones take a
  command nobody will read. ``connect`` retries those for ``RECONNECT_S``.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import secrets
import select
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

STEM_NAMES: tuple[str, ...] = ("vocals", "accompaniment")
DEFAULT_TIMEOUT_S = 60.0
# Quick queries (GetInfo, Select...) answer in milliseconds; a long wait means
# a dialog is up, so they get a shorter deadline than Export2/Import2.
QUERY_TIMEOUT_S = 10.0
# How long a missing or unread pipe may be Audacity remaking it between two
# clients (milliseconds, more under load) before it counts as no Audacity.
RECONNECT_S = 2.0

# Audacity 3.2 picks the WAV sample format for Export2 from this preference
# (libsndfile subtype code). 6 is 32-bit float, 2 is 16-bit PCM, the default.
# Float keeps the round trip exact: no quantisation and no dither.
_WAV_FORMAT_PREF = "/FileFormats/ExportFormat_SF1_Type/WAV_10000"
_WAV_FLOAT = "6"
_WAV_DEFAULT = "2"

_FINISHED = re.compile(rb"(?:^|\n)BatchCommand finished: ([^\n]*)\n\n")


class AudacityError(Exception):
    """A problem the user can act on; the message is one line, shown as is."""


class CommandFailed(AudacityError):
    """Audacity answered ``BatchCommand finished: Failed!``."""


class _NotListening(AudacityError):
    """No reader behind the pipes right now: Audacity is not running, or is remaking its pipes."""


class StemSeparator(Protocol):
    def separate_file(
        self,
        path: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        stems: Sequence[str] = ...,
        format: str = ...,
        force: bool = ...,
    ) -> Mapping[str, Path]: ...


SeparatorFactory = Callable[[str], StemSeparator]


def default_pipe_paths() -> tuple[Path, Path]:
    """The (to, from) pipe paths mod-script-pipe creates for this user."""
    uid = os.getuid()
    return (
        Path(f"/tmp/audacity_script_pipe.to.{uid}"),
        Path(f"/tmp/audacity_script_pipe.from.{uid}"),
    )


def quote_arg(value: str) -> str:
    """Quote a command parameter value for mod-script-pipe.

    Audacity splits parameters like a Unix shell word list, so a value with
    spaces needs double quotes, and backslash escapes quotes inside them.
    Line breaks would end the command early, so they are refused.
    """
    if "\n" in value or "\r" in value:
        raise AudacityError(f"cannot pass a value with a line break to Audacity: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AudacityPipe:
    """A connection to Audacity's mod-script-pipe with a deadline on every reply."""

    def __init__(
        self,
        to_path: str | os.PathLike[str] | None = None,
        from_path: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        default_to, default_from = default_pipe_paths()
        self.to_path = Path(to_path) if to_path is not None else default_to
        self.from_path = Path(from_path) if from_path is not None else default_from
        self.timeout = timeout
        self._wfd: int | None = None
        self._rfd: int | None = None
        self._buffer = b""

    def __enter__(self) -> AudacityPipe:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        if os.name != "posix":
            raise AudacityError("acapella audacity supports mod-script-pipe on Linux and macOS only")
        deadline = time.monotonic() + RECONNECT_S
        while True:
            try:
                self._connect_once()
                return
            except _NotListening:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _connect_once(self) -> None:
        self._check_fifo(self.to_path)
        self._check_fifo(self.from_path)
        try:
            # Non-blocking so a pipe nobody reads fails now (ENXIO) instead of
            # blocking this process forever in open().
            self._wfd = os.open(self.to_path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise _NotListening(
                    f"stale Audacity pipe {self.to_path}: no Audacity is listening; start Audacity "
                    "with mod-script-pipe enabled (Edit > Preferences > Modules) and try again"
                ) from None
            if exc.errno == errno.ENOENT:
                self._check_fifo(self.to_path)
                # Gone at open() yet back now: Audacity remade it in between, so wait it out.
                raise _NotListening(f"Audacity remade its script pipe {self.to_path}") from None
            raise AudacityError(f"cannot open Audacity pipe {self.to_path}: {exc.strerror}") from None
        try:
            # Audacity opens its end of the reply pipe only once we hold this
            # one, so a blocking open could race; replies are polled instead.
            self._rfd = os.open(self.from_path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            self.close()
            if exc.errno == errno.ENOENT:
                self._check_fifo(self.from_path)
                raise _NotListening(f"Audacity remade its script pipe {self.from_path}") from None
            raise AudacityError(f"cannot open Audacity pipe {self.from_path}: {exc.strerror}") from None
        try:
            self._sync()
        except BaseException:
            # __exit__ does not run when __enter__ fails, so close here.
            self.close()
            raise

    def close(self) -> None:
        for fd in (self._wfd, self._rfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wfd = self._rfd = None
        self._buffer = b""

    def _check_fifo(self, path: Path) -> None:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise _NotListening(
                f"no Audacity script pipe at {path}: start Audacity and enable mod-script-pipe "
                "(Edit > Preferences > Modules, then restart Audacity)"
            ) from None
        except OSError as exc:
            raise AudacityError(f"cannot access Audacity pipe {path}: {exc.strerror}") from None
        if not stat.S_ISFIFO(mode):
            raise AudacityError(f"{path} is not a named pipe; remove it and restart Audacity")

    def _sync(self) -> None:
        """Discard replies left over from a client that gave up mid-command.

        Without this, a late reply to someone else's command would be read as
        the reply to our first one.
        """
        token = "acapella-sync-" + secrets.token_hex(8)
        limit = min(self.timeout, QUERY_TIMEOUT_S)
        deadline = time.monotonic() + limit
        self._send(f"Message: Text={token}", limit)
        while True:
            try:
                status, body = self._read_reply("Message", min(deadline, time.monotonic() + 0.1))
            except AudacityError as exc:
                if "did not answer" not in str(exc):
                    raise
                if self._pipes_replaced():
                    raise _NotListening(f"Audacity remade its script pipe {self.to_path}") from None
                if time.monotonic() < deadline:
                    continue
                raise AudacityError(
                    f"Audacity is not answering on {self.to_path} (waited {limit:g} s); if a dialog "
                    "is open in Audacity, close it and try again"
                ) from None
            if status == "OK" and body.strip() == token:
                return

    def _pipes_replaced(self) -> bool:
        """Whether the pipes we hold are no longer the ones at the paths (Audacity made new ones)."""
        for fd, path in ((self._wfd, self.to_path), (self._rfd, self.from_path)):
            try:
                if fd is None or os.fstat(fd).st_ino != path.stat().st_ino:
                    return True
            except OSError:
                return True
        return False

    def command(self, command: str, timeout: float | None = None) -> str:
        """Send one command and return its reply text (without the status line)."""
        limit = self.timeout if timeout is None else min(timeout, self.timeout)
        deadline = time.monotonic() + limit
        name = command.split(":", 1)[0].strip()
        self._send(command, limit)
        status, body = self._read_reply(name, deadline)
        if status != "OK":
            detail = " ".join(body.split())
            raise CommandFailed(
                f"Audacity refused {name!r}" + (f": {detail}" if detail else f" ({status})")
            )
        return body

    def _send(self, command: str, limit: float) -> None:
        if self._wfd is None:
            raise AudacityError("not connected to Audacity")
        data = (command + "\n").encode("utf-8")
        deadline = time.monotonic() + limit
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timeout_error(command.split(":", 1)[0])
            _, writable, _ = select.select([], [self._wfd], [], left)
            if not writable:
                continue
            try:
                written = os.write(self._wfd, data)
            except BlockingIOError:
                continue
            except BrokenPipeError:
                # Before the first reply, most likely the old pipe of a server that just remade it.
                raise _NotListening(
                    f"Audacity closed its script pipe {self.to_path}; is it still running?"
                ) from None
            data = data[written:]

    def _read_reply(self, name: str, deadline: float) -> tuple[str, str]:
        assert self._rfd is not None
        while True:
            match = _FINISHED.search(self._buffer)
            if match:
                body = self._buffer[: match.start()].decode("utf-8", errors="replace").strip("\n")
                self._buffer = self._buffer[match.end():]
                return match.group(1).decode("utf-8", errors="replace").strip(), body
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timeout_error(name)
            readable, _, _ = select.select([self._rfd], [], [], min(left, 0.5))
            if not readable:
                continue
            try:
                chunk = os.read(self._rfd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                # No writer on the reply pipe (yet, or any more). A FIFO then
                # polls readable forever, so back off instead of spinning.
                time.sleep(0.02)
                continue
            self._buffer += chunk

    @staticmethod
    def _timeout_error(name: str) -> AudacityError:
        return AudacityError(
            f"Audacity did not answer {name!r} in time; if a dialog is open in Audacity, "
            "close it and try again (or raise --timeout)"
        )

    # Convenience wrappers for the commands this adapter needs.

    def tracks(self) -> list[dict[str, Any]]:
        body = self.command("GetInfo: Type=Tracks Format=JSON", QUERY_TIMEOUT_S)
        data = parse_info_json(body)
        if not isinstance(data, list):
            raise AudacityError(f"unexpected reply from Audacity to GetInfo: {body[:80]!r}")
        return data

    def get_preference(self, name: str) -> str | None:
        try:
            return self.command(f"GetPreference: Name={quote_arg(name)}", QUERY_TIMEOUT_S).strip()
        except CommandFailed:
            # Audacity answers Failed! for a preference that was never written.
            return None

    def set_preference(self, name: str, value: str) -> None:
        self.command(f"SetPreference: Name={quote_arg(name)} Value={quote_arg(value)}", QUERY_TIMEOUT_S)

    def export_selection(self, path: Path, channels: int) -> None:
        """Export the selected audio as 32-bit float WAV, leaving the user's format setting as it was."""
        check_pipe_path(path)
        previous = self.get_preference(_WAV_FORMAT_PREF)
        self.set_preference(_WAV_FORMAT_PREF, _WAV_FLOAT)
        try:
            self.command(f"Export2: Filename={quote_arg(str(path))} NumChannels={channels}")
        finally:
            self.set_preference(_WAV_FORMAT_PREF, previous if previous else _WAV_DEFAULT)

    def import_file(self, path: Path) -> None:
        """Import an audio file as a new track; the file must be readable audio."""
        validate_audio_file(path)
        self.command(f"Import2: Filename={quote_arg(str(path))}")

    def select_tracks(self, indices: Sequence[int]) -> None:
        for n, index in enumerate(indices):
            mode = "Set" if n == 0 else "Add"
            self.command(f"SelectTracks: Track={index} TrackCount=1 Mode={mode}", QUERY_TIMEOUT_S)


_LONE_BACKSLASH = re.compile(r'\\(?:(["\\/bfnrt]|u[0-9a-fA-F]{4}))?')


def parse_info_json(body: str) -> Any:
    """Parse a GetInfo JSON reply, which Audacity 3.2 does not fully escape.

    It escapes quotes in track names but writes backslashes and control
    characters as they are, so ``AC\\DC`` arrives as ``"AC\\DC"``. A backslash
    that starts no valid escape is taken literally; control characters are
    allowed inside strings.
    """
    fixed = _LONE_BACKSLASH.sub(lambda m: m.group(0) if m.group(1) else "\\\\", body)
    try:
        return json.loads(fixed, strict=False)
    except json.JSONDecodeError:
        raise AudacityError(
            "unexpected reply from Audacity to GetInfo (a track name ending in a backslash can cause "
            f"this: rename that track): {body[:80]!r}"
        ) from None


def check_pipe_path(path: Path) -> None:
    """Refuse paths that cannot be sent on one pipe line."""
    text = str(path)
    if any(ch in text for ch in '\n\r"\\'):
        raise AudacityError(
            f"path {text!r} contains a quote, backslash or line break, which the Audacity pipe "
            "cannot carry; use a plain path (for temporary files, set TMPDIR)"
        )


def validate_audio_file(path: Path) -> None:
    """Check a file before Import2: Audacity answers a bad path with a modal
    dialog that blocks the pipe until someone clicks it away."""
    check_pipe_path(path)
    if not path.is_absolute():
        raise AudacityError(f"refusing to import {path}: Audacity needs an absolute path")
    if not path.is_file():
        raise AudacityError(f"refusing to import {path}: the file does not exist")
    if not os.access(path, os.R_OK):
        raise AudacityError(f"refusing to import {path}: the file is not readable")
    import soundfile

    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # soundfile raises several types for bad files
        raise AudacityError(f"refusing to import {path}: not a readable audio file ({exc})") from None
    if info.frames <= 0:
        raise AudacityError(f"refusing to import {path}: the file holds no audio")


@dataclass(frozen=True)
class AddedTrack:
    name: str
    stem: str
    start: float
    end: float


def _clean_track_name(name: str) -> str:
    # Control characters (a newline above all) would break the command line.
    return "".join(ch if ch.isprintable() else " " for ch in name).strip() or "Audio"


def _silenced_tracks(tracks: Sequence[Mapping[str, Any]], indices: Sequence[int]) -> dict[int, str]:
    """Which of ``indices`` Export2 leaves out of the mix, and why ("muted" or "soloed")."""
    any_solo = any(t.get("solo") for t in tracks if t.get("kind") == "wave")
    silenced = {}
    for i in indices:
        if tracks[i].get("mute"):
            silenced[i] = "muted"
        elif any_solo and not tracks[i].get("solo"):
            silenced[i] = "soloed"
    return silenced


def _silenced_message(tracks: Sequence[Mapping[str, Any]], silenced: Mapping[int, str], every: bool) -> str:
    names = ", ".join(repr(_clean_track_name(str(tracks[i].get("name", "")))) for i in silenced)
    muted = "muted" in silenced.values()
    soloed = "soloed" in silenced.values()
    why = " or ".join(
        w for w, on in (("muted", muted), ("silenced because another track is soloed", soloed)) if on
    )
    fix = " and ".join(
        f for f, on in (("unmute them", muted), ("clear Solo on the other tracks", soloed)) if on
    )
    if every:
        return (
            f"the selected track(s) {names} are {why}, so Audacity exports nothing: "
            f"{fix} (or select audible tracks) and try again"
        )
    return f"warning: left out of the mix because {why}: {names}; {fix} to include them"


def _default_separator(model: str) -> StemSeparator:
    try:
        from acapella import Separator
    except ImportError as exc:
        raise AudacityError(f"the acapella separator is not available: {exc}") from None
    return Separator(model=model)


def separate_selection(
    pipe: AudacityPipe,
    stems: Sequence[str] = STEM_NAMES,
    model: str = "default",
    separator_factory: SeparatorFactory | None = None,
    log: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[AddedTrack]:
    """Export the selection, separate it, and add one track per stem.

    ``separator_factory`` exists so development code can swap the separator;
    the command line always uses ``acapella.Separator``.
    """
    say = log or (lambda _msg: None)
    tell = warn or (lambda _msg: None)
    tracks = pipe.tracks()
    # Every selected track, labels and the like included, to select again at the end.
    selected = [i for i, t in enumerate(tracks) if t.get("selected")]
    audio = [i for i in selected if tracks[i].get("kind") == "wave"]
    if not audio:
        raise AudacityError("no audio track is selected in Audacity: select some audio first")
    silenced = _silenced_tracks(tracks, audio)
    audible = [i for i in audio if i not in silenced]
    if not audible:
        raise AudacityError(_silenced_message(tracks, silenced, every=True))
    if silenced:
        tell(_silenced_message(tracks, silenced, every=False))
    channels = 2 if any(int(tracks[i].get("channels", 1)) >= 2 for i in audible) else 1
    base = (
        _clean_track_name(str(tracks[audible[0]].get("name", "")))
        if len(audible) == 1
        else "Selection"
    )

    with tempfile.TemporaryDirectory(prefix="acapella-audacity-") as tmp_name:
        tmp = Path(tmp_name).resolve()
        selection = tmp / "selection.wav"
        say("exporting the selection from Audacity")
        pipe.export_selection(selection, channels)
        if not selection.is_file():
            raise AudacityError(f"Audacity reported an export but wrote no file at {selection}")
        import soundfile

        try:
            frames = soundfile.info(str(selection)).frames
        except Exception as exc:
            raise AudacityError(f"cannot read the audio Audacity exported to {selection}: {exc}") from None
        if frames == 0:
            raise AudacityError("the Audacity selection is empty: select some audio first")

        say(f"separating {frames} frames into {', '.join(stems)}")
        factory = separator_factory or _default_separator
        try:
            separator = factory(model)
            written = separator.separate_file(selection, tmp / "stems", stems=tuple(stems), format="wav")
        except AudacityError:
            raise
        except Exception as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise AudacityError(f"separation failed: {message}") from None

        paths: dict[str, Path] = {}
        for stem in stems:
            if stem not in written:
                raise AudacityError(f"separation produced no {stem!r} stem")
            path = Path(written[stem]).resolve()
            validate_audio_file(path)
            paths[stem] = path

        # Import2 moves the time selection onto the new track, so keep the
        # user's selection in Audacity's stored-selection slot to align each
        # stem to it and to give it back at the end.
        pipe.command("SelSave:", QUERY_TIMEOUT_S)
        added: list[AddedTrack] = []
        try:
            for stem in stems:
                name = f"{base} - {stem}"
                say(f"importing {name!r}")
                before = len(pipe.tracks())
                pipe.import_file(paths[stem])
                after = pipe.tracks()
                if len(after) != before + 1:
                    raise AudacityError(
                        f"importing {paths[stem]} gave {len(after) - before} new tracks instead of 1"
                    )
                new_index = len(after) - 1
                pipe.command("SelRestore:", QUERY_TIMEOUT_S)
                pipe.select_tracks([new_index])
                pipe.command("Align_StartToSelStart:", QUERY_TIMEOUT_S)
                pipe.command(f"SetTrack: Name={quote_arg(name)}", QUERY_TIMEOUT_S)
                info = pipe.tracks()[new_index]
                added.append(AddedTrack(name, stem, float(info["start"]), float(info["end"])))
        finally:
            # Give the user back the selection they had, even after a failure.
            try:
                pipe.command("SelRestore:", QUERY_TIMEOUT_S)
                pipe.select_tracks(selected)
            except AudacityError:
                pass
    return added


def parse_stems(value: str) -> tuple[str, ...]:
    stems = tuple(s.strip() for s in value.split(",") if s.strip())
    if not stems:
        raise argparse.ArgumentTypeError(f"no stem named in {value!r}; use e.g. vocals,accompaniment")
    for stem in stems:
        if stem not in STEM_NAMES:
            raise argparse.ArgumentTypeError(
                f"unknown stem {stem!r}; choose from {', '.join(STEM_NAMES)}"
            )
    if len(set(stems)) != len(stems):
        raise argparse.ArgumentTypeError(f"stem listed twice in {value!r}")
    return stems


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"timeout must be positive, got {value!r}")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``acapella audacity`` options to ``parser``."""
    parser.add_argument(
        "--stems",
        type=parse_stems,
        default=STEM_NAMES,
        metavar="LIST",
        help="comma-separated stems to add as tracks (default: vocals,accompaniment)",
    )
    parser.add_argument("--model", default="default", help="separation model name (default: default)")
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"longest wait for any one Audacity command (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors and warnings")


def run(args: argparse.Namespace) -> int:
    """Run ``acapella audacity`` with parsed arguments; returns the exit status."""
    quiet = bool(getattr(args, "quiet", False))

    def log(message: str) -> None:
        if not quiet:
            print(f"acapella audacity: {message}", file=sys.stderr)

    def warn(message: str) -> None:
        # Even with --quiet: the stems then miss audio the user selected.
        print(f"acapella audacity: {message}", file=sys.stderr)

    try:
        with AudacityPipe(timeout=args.timeout) as pipe:
            added = separate_selection(pipe, stems=args.stems, model=args.model, log=log, warn=warn)
    except AudacityError as exc:
        print(f"acapella audacity: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("acapella audacity: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an Audacity version we do not know: still one line
        detail = " ".join(str(exc).split()) or "no details"
        print(f"acapella audacity: error: unexpected {type(exc).__name__}: {detail}", file=sys.stderr)
        return 1
    if not quiet:
        for track in added:
            print(f"added track {track.name!r} ({track.start:.3f} s to {track.end:.3f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="acapella audacity",
        description="Separate the audio selected in a running Audacity into new stem tracks.",
    )
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and usage errors (2)
        return int(exc.code or 0)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
