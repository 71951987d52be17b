"""The transport to a running Audacity: its mod-script-pipe, with a deadline on every reply.

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

import errno
import json
import os
import re
import secrets
import select
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


class NotListening(AudacityError):
    """No reader behind the pipes right now: Audacity is not running, or is remaking its pipes."""


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
            except NotListening:
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
                raise NotListening(
                    f"stale Audacity pipe {self.to_path}: no Audacity is listening; start Audacity "
                    "with mod-script-pipe enabled (Edit > Preferences > Modules) and try again"
                ) from None
            if exc.errno == errno.ENOENT:
                self._check_fifo(self.to_path)
                # Gone at open() yet back now: Audacity remade it in between, so wait it out.
                raise NotListening(f"Audacity remade its script pipe {self.to_path}") from None
            raise AudacityError(f"cannot open Audacity pipe {self.to_path}: {exc.strerror}") from None
        try:
            # Audacity opens its end of the reply pipe only once we hold this
            # one, so a blocking open could race; replies are polled instead.
            self._rfd = os.open(self.from_path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            self.close()
            if exc.errno == errno.ENOENT:
                self._check_fifo(self.from_path)
                raise NotListening(f"Audacity remade its script pipe {self.from_path}") from None
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
            raise NotListening(
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
                    raise NotListening(f"Audacity remade its script pipe {self.to_path}") from None
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
                raise NotListening(
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
