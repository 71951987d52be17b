"""Separate the current Audacity selection into stems, in place.

``acapella audacity`` exports the selection through Audacity's mod-script-pipe
(`acapella.host_adapters.audacity_pipe`), separates it, and imports each stem as
a new track named ``<track name> - <stem>`` that starts where the selection
starts. The original tracks are not modified.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from acapella import options
from acapella.host_adapters.audacity_pipe import (
    DEFAULT_TIMEOUT_S,
    QUERY_TIMEOUT_S,
    AudacityError,
    AudacityPipe,
    quote_arg,
    validate_audio_file,
)
from acapella.stems import STEMS

STEM_NAMES: tuple[str, ...] = STEMS


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``acapella audacity`` options to ``parser``."""
    parser.add_argument(
        "--stems",
        type=options.stems,
        default=STEM_NAMES,
        metavar="LIST",
        help="comma-separated stems to add as tracks (default: vocals,accompaniment)",
    )
    parser.add_argument("--model", default="default", help="separation model name (default: default)")
    parser.add_argument(
        "--timeout",
        type=options.seconds,
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
