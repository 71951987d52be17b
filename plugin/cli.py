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
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from acapella import __version__, cluster, options, outputs
from acapella.files import FORMATS, escape
from acapella.stems import STEMS
from acapella.stream import CHUNK_SECONDS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(msg: str) -> None:
    # One line, whatever a message picked up on its way (a file name with a newline in it).
    print(f"acapella: {escape(msg)}", file=sys.stderr, flush=True)


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is, so that no temporary file outlives the process."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    raise _Terminated(signum)


def _check_writable(out_dir: Path) -> str | None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        return f"cannot write to output folder {escape(out_dir)}: {exc.strerror or exc}"
    return None


def _write_json(record: dict) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def cmd_separate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from acapella.files import Reader
    from acapella.separator import Separator

    if getattr(args, "cluster", None):
        from acapella.cluster import run_cli

        return run_cli(args)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            _err("--plot needs matplotlib: pip install 'acapella[plot]'")
            return EXIT_USAGE
    out_dir = Path(args.output)
    jobs = list(outputs.walk(args.inputs))
    failed = 0
    for job in jobs:
        if job.problem:
            _err(f"{escape(job.source)}: {job.problem}")
            if args.json:
                _write_json(outputs.run_job(job, out_dir, None))
            failed += 1
    jobs = [j for j in jobs if not j.problem]
    if not jobs:
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

    options = outputs.Options(stems=args.stems, format=args.format, force=args.force, plot=args.plot)
    show = not args.quiet and sys.stderr.isatty()
    protect = frozenset(j.source.resolve() for j in jobs)
    done = []
    overall = tqdm(total=len(jobs), desc="files", unit="file", disable=not show, position=0, file=sys.stderr)
    try:
        for job in jobs:
            total = None
            if show:
                try:
                    with Reader(job.source) as r:
                        total = r.frames
                except Exception:
                    pass
            bar = tqdm(total=total, desc=escape(job.source.name)[:30], unit="smp", unit_scale=True, leave=False,
                       disable=not show, position=1, file=sys.stderr)
            with bar:
                result = outputs.run_job(job, out_dir, sep, options, progress=bar.update, protect=protect)
            name = escape(job.source)
            if result["status"] == "failed":
                failed += 1
                _err(f"{name}: {result['reason']}")
            else:
                done.append(result)
                if result["status"] == "skipped" and not args.quiet:
                    _err(f"skipping {name}: {result['reason']}")
            for line in result["warnings"]:
                _err(f"warning: {line}")
            if args.json:
                _write_json(result)
            overall.update(1)
    except KeyboardInterrupt as exc:
        overall.close()
        _err("interrupted; no partial output was left behind")
        return 128 + exc.signum if isinstance(exc, _Terminated) else EXIT_INTERRUPTED
    overall.close()
    if done and not args.json and sys.stdout.isatty():
        for result in done:
            print(f"{escape(result['input'])} -> {escape(result['folder'])}{os.sep}")
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
    for terms in dict.fromkeys(cat.get(name, {}).get("terms") for name in bundled()):
        if terms:
            print(f"Weights of {', '.join(n for n in bundled() if cat.get(n, {}).get('terms') == terms)}: "
                  f"{terms}; the code is MIT")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from acapella import demo
    from acapella.files import AtomicWriters, sweep_temporaries

    out = Path(args.output)
    if out.exists() and not args.force:
        _err(f"{escape(out)} exists (use --force to overwrite)")
        return EXIT_FAILED
    if out.suffix.lower() not in {".wav", ".flac", ".ogg"}:
        _err(f"demo output must end in .wav, .flac or .ogg, got {escape(out)}")
        return EXIT_USAGE
    if not args.seconds <= 3600:
        _err(f"--seconds must be a number of seconds from 0 to 3600, got {args.seconds:g}")
        return EXIT_USAGE
    sweep_temporaries(out.parent, [out.name])  # what a killed earlier run left
    vocals, accompaniment = demo.song(args.seconds)
    try:  # written as stems are: by the encoder process, verified, then renamed into place
        with AtomicWriters({"demo": out}, demo.RATE, 2, out.suffix.lstrip("."), frames=vocals.shape[1]) as w:
            w.write({"demo": vocals + accompaniment})
    except OSError as exc:
        _err(exc.strerror if exc.strerror and not exc.filename else f"cannot write {escape(out)}: {exc.strerror or exc}")
        return EXIT_FAILED
    print(escape(out))
    return EXIT_OK


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
    s.add_argument("--stems", type=options.stems, default=STEMS, metavar="LIST",
                   help=f"comma-separated stems to write (default: {','.join(STEMS)})")
    s.add_argument("--format", type=options.output_format, default="wav", metavar="FORMAT",
                   help=f"output format: {', '.join(FORMATS)} (default: %(default)s)")
    s.add_argument("--model", default="default", help="bundled model name or .onnx path (see: acapella models)")
    s.add_argument("--chunk-seconds", type=options.seconds, default=CHUNK_SECONDS,
                   help="audio per network call (default: %(default)s)")
    s.add_argument("--threads", type=options.count, default=None,
                   help="threads for the network and the STFT (default: all cores)")
    s.add_argument("--per-channel", action="store_true",
                   help="separate each channel as a mono song (twice the work): for voices panned to one side")
    s.add_argument("--vocal-pan", type=options.vocal_pan, default="auto", metavar="P",
                   help="where the voice sits: -1 hard left, 0 centre, 1 hard right, or auto to find it "
                        "in each stereo file (default: %(default)s)")
    s.add_argument("--force", action="store_true", help="overwrite existing outputs")
    s.add_argument("--quiet", action="store_true", help="no progress bars or skip messages")
    s.add_argument("--plot", action="store_true", help="also write spectrograms.png (needs matplotlib)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON record per input on stdout: input, status (done, skipped, failed), "
                        "reason, folder, stems {name: path}, warnings")
    cluster.add_arguments(s)
    s.set_defaults(func=cmd_separate)

    d = sub.add_parser("demo", help="write a synthetic demo song (sung vowels over drums, bass and chords)")
    d.add_argument("output", metavar="OUT_FILE", help="where to write it (.wav, .flac or .ogg)")
    d.add_argument("--seconds", type=options.seconds, default=8.0, help="length (default: %(default)s)")
    d.add_argument("--force", action="store_true", help="overwrite OUT_FILE")
    d.set_defaults(func=cmd_demo)

    cluster.add_worker_parser(sub)

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
