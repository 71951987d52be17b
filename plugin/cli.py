"""The ``acapella`` command.

    acapella separate song.mp3 album/ -o stems/
    acapella models
    acapella --version

Exit status: 0 when every input was separated (or skipped because its outputs
exist), 1 when any input failed, 2 for usage errors, 130 on Ctrl-C (143 on SIGTERM,
129 on SIGHUP, each cleaned up as Ctrl-C is).
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from acapella import __version__
from acapella.stems import STEMS, parse_stems
from acapella.files import AUDIO_EXTENSIONS, FORMATS
from acapella.stream import CHUNK_SECONDS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(msg: str) -> None:
    print(f"acapella: {msg}", file=sys.stderr, flush=True)


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is, so that no temporary file outlives the process."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    raise _Terminated(signum)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _is_output(f: Path, out_resolved: Path) -> bool:
    """Whether `f` is a stem this command writes, OUT/<name>/<stem>.<format>, from an earlier run."""
    return (f.stem in STEMS and f.suffix.lower().lstrip(".") in FORMATS
            and f.resolve().parent.parent == out_resolved)


def collect_inputs(inputs: list[str], out_dir: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files named or found under folders; and (path, reason) for inputs that yield none.

    Folders are searched recursively, leaving out hidden files (a Mac's ``._song.wav``
    companions) and the stems of earlier runs into the same output folder. A file
    reached twice (named under two spellings, or also found in a folder) counts once.
    """
    files, problems = [], []
    out_resolved = out_dir.resolve()
    for raw in inputs:
        p = Path(raw)
        try:
            if p.is_dir():
                found = sorted(f for f in p.rglob("*") if not f.name.startswith(".")
                               and f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file()
                               and not _is_output(f, out_resolved))
                if not found:
                    os.listdir(p)  # an unreadable folder says so, rather than "no audio files"
                    problems.append((raw, "no audio files in this folder"))
                files.extend(found)
            elif p.exists():
                files.append(p)
            else:
                problems.append((raw, "no such file or folder"))
        except OSError as exc:
            problems.append((raw, _reason(exc)))
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    return list(unique.values()), problems


def output_names(files: list[Path]) -> list[str]:
    """`<input name>` per file, each distinct in the batch: repeated names get -2, -3, ...

    Names are compared without case, as a case-insensitive disk would, and a name
    made only of dots (``...wav``) becomes a plain folder name.
    """
    taken: set[str] = set()
    names = []
    for f in files:
        base = f.stem if f.stem.strip(".") else f.name.replace(".", "_")
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.casefold())
        names.append(name)
    return names


def _remove_if_empty(folder: Path, made: bool) -> None:
    """Removes an input's output folder that this run made and left empty."""
    try:
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass  # what stays is an empty folder, not worth a second error


def _check_writable(out_dir: Path) -> str | None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        return f"cannot write to output folder {out_dir}: {exc.strerror or exc}"
    return None


def cmd_separate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from acapella.separator import Separator

    try:
        stems = parse_stems(args.stems)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            _err("--plot needs matplotlib: pip install 'acapella[plot]'")
            return EXIT_USAGE
    out_dir = Path(args.output)
    files, problems = collect_inputs(args.inputs, out_dir)
    for path, reason in problems:
        _err(f"{path}: {reason}")
    if not files:
        return EXIT_FAILED
    try:  # before the output folder is made, so that a usage error leaves nothing behind
        sep = Separator(model=args.model, threads=args.threads, chunk_seconds=args.chunk_seconds,
                        per_channel=args.per_channel, vocal_pan=args.vocal_pan)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    problem = _check_writable(out_dir)
    if problem:
        _err(problem)
        return EXIT_FAILED

    show = not args.quiet and sys.stderr.isatty()
    inputs = {f.resolve() for f in files}
    failed = len(problems)
    overall = tqdm(total=len(files), desc="files", unit="file", disable=not show, position=0, file=sys.stderr)
    try:
        for f, name in zip(files, output_names(files)):
            target = out_dir / name
            made = False
            try:
                made = not target.exists()
                outs = {s: target / f"{s}.{args.format}" for s in stems}
                clash = [o for o in outs.values() if o.resolve() in inputs]
                if clash:
                    _err(f"{f}: output {clash[0]} would overwrite an input; choose another -o")
                    failed += 1
                    overall.update(1)
                    continue
                # Without --force, stems already written stay; the missing ones are still made.
                todo = [s for s, o in outs.items() if args.force or not o.exists()]
                if not todo:
                    if not args.quiet:
                        _err(f"skipping {f}: outputs exist in {target} (use --force to overwrite)")
                    overall.update(1)
                    continue
                from acapella.files import Reader

                with Reader(f) as r:
                    total = r.frames
                bar = tqdm(total=total, desc=f.name[:30], unit="smp", unit_scale=True, leave=False,
                           disable=not show, position=1, file=sys.stderr)
                with bar:
                    sep.separate_file(f, target, stems=todo, format=args.format, force=True,
                                      progress=bar.update)
                if args.plot:
                    from acapella.plot import plot_stems

                    plot_stems(f, outs, target / "spectrograms.png")
            except Exception as exc:
                _err(f"{f}: {_reason(exc)}")
                failed += 1
                _remove_if_empty(target, made)
            except KeyboardInterrupt:
                _remove_if_empty(target, made)
                raise
            overall.update(1)
    except KeyboardInterrupt as exc:
        overall.close()
        _err("interrupted; no partial output was left behind")
        return 128 + exc.signum if isinstance(exc, _Terminated) else EXIT_INTERRUPTED
    overall.close()
    if failed:
        _err(f"{failed} input(s) failed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from acapella.onnx_model import OnnxModel, bundled, catalogue, resolve

    cat = catalogue()
    rows = []
    for name in bundled():
        m = OnnxModel(name)
        q = cat.get(name, {}).get("quality", {})
        musdb = q.get("musdb-valid", {})
        size = resolve(name).stat().st_size / 1e6
        rows.append((name, f"{m.sample_rate} Hz", f"{m.channels} ch", f"{size:.1f} MB",
                     f"{(m.parameters or 0) / 1e6:.2f} M",
                     f"{musdb['vocals_sdr_v4']:.2f} dB" if "vocals_sdr_v4" in musdb else "-",
                     f"{musdb['accompaniment_sdr_v4']:.2f} dB" if "accompaniment_sdr_v4" in musdb else "-",
                     cat.get(name, {}).get("description", "")))
    head = ("model", "rate", "chans", "size", "params", "vocals SDR", "accomp. SDR", "")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print("SDR: BSS Eval v4, median over 1 s frames then over the 14 MUSDB18 validation songs; "
          "see acapella/model/MODEL_CARD.md")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from acapella import demo
    from acapella.files import publish

    out = Path(args.output)
    if out.exists() and not args.force:
        _err(f"{out} exists (use --force to overwrite)")
        return EXIT_FAILED
    if out.suffix.lower() not in {".wav", ".flac", ".ogg"}:
        _err(f"demo output must end in .wav, .flac or .ogg, got {out}")
        return EXIT_USAGE
    if not 0 < args.seconds <= 3600:
        _err(f"--seconds must be a number of seconds from 0 to 3600, got {args.seconds:g}")
        return EXIT_USAGE
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=out.suffix)
        os.close(fd)
        demo.write(tmp, seconds=args.seconds)
        publish(tmp, out)
    except OSError as exc:
        _err(f"cannot write {out}: {exc.strerror or exc}")
        return EXIT_FAILED
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
    print(out)
    return EXIT_OK


def _vocal_pan(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give auto or a number from -1 (hard left) to 1 (hard right)")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(EXIT_USAGE, f"acapella: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="acapella", description="Split songs into vocals and accompaniment stems.")
    ap.add_argument("--version", action="version", version=f"acapella {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("separate", help="separate audio files into stems")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (searched recursively)")
    s.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="stems go to OUT_DIR/<input name>/<stem>.<format>")
    s.add_argument("--stems", default=",".join(STEMS), help="comma-separated stems to write (default: %(default)s)")
    s.add_argument("--format", default="wav", choices=list(FORMATS), help="output format (default: %(default)s)")
    s.add_argument("--model", default="default", help="bundled model name or .onnx path (see: acapella models)")
    s.add_argument("--chunk-seconds", type=float, default=CHUNK_SECONDS, help="audio per network call (default: %(default)s)")
    s.add_argument("--threads", type=int, default=None, help="threads for the network and the STFT (default: all cores)")
    s.add_argument("--per-channel", action="store_true",
                   help="separate each channel as a mono song (twice the work): for voices panned to one side")
    s.add_argument("--vocal-pan", type=_vocal_pan, default="auto", metavar="P",
                   help="where the voice sits: -1 hard left, 0 centre, 1 hard right, or auto to find it "
                        "in each stereo file (default: %(default)s)")
    s.add_argument("--force", action="store_true", help="overwrite existing outputs")
    s.add_argument("--quiet", action="store_true", help="no progress bars or skip messages")
    s.add_argument("--plot", action="store_true", help="also write spectrograms.png (needs matplotlib)")
    s.set_defaults(func=cmd_separate)

    d = sub.add_parser("demo", help="write a synthetic demo song (sung vowels over drums, bass and chords)")
    d.add_argument("output", metavar="OUT_FILE", help="where to write it (.wav, .flac or .ogg)")
    d.add_argument("--seconds", type=float, default=8.0, help="length (default: %(default)s)")
    d.add_argument("--force", action="store_true", help="overwrite OUT_FILE")
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("models", help="list the bundled models")
    m.set_defaults(func=cmd_models)

    try:
        from acapella.host_adapters import audacity
    except ImportError:
        audacity = None
    if audacity is not None and hasattr(audacity, "add_arguments"):
        a = sub.add_parser("audacity", help="separate the selection of a running Audacity into new tracks")
        audacity.add_arguments(a)
        a.set_defaults(func=audacity.run)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        ap.print_help(sys.stderr)
        return EXIT_USAGE
    if getattr(args, "threads", None) is not None and args.threads < 1:
        _err(f"--threads must be at least 1, got {args.threads}")
        return EXIT_USAGE
    if not 0 < getattr(args, "chunk_seconds", 1.0) < math.inf:
        _err(f"--chunk-seconds must be a positive number of seconds, got {args.chunk_seconds}")
        return EXIT_USAGE
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):  # a closed terminal or a scheduler's kill: clean up as for Ctrl-C
            if hasattr(signal, name):
                previous[name] = signal.signal(getattr(signal, name), _terminate)
    try:
        return args.func(args)
    except KeyboardInterrupt as exc:
        _err("interrupted")
        return 128 + exc.signum if isinstance(exc, _Terminated) else EXIT_INTERRUPTED
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


if __name__ == "__main__":
    sys.exit(main())
