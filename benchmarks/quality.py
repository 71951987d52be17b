"""Separation quality on a folder of songs: BSS Eval v4 SDR and global SDR.

    python benchmarks/quality.py DATA_FOLDER [--model NAME] [--songs "A;B"] [--json out.json]
    python benchmarks/quality.py --set musdb-valid [--mixture-baseline]
    python benchmarks/quality.py --set musdb-valid --model NEW.onnx --against default
    python benchmarks/quality.py --set musdb-valid --post wiener=1 --against default

Each song is a sub-folder of DATA_FOLDER holding vocals.* and accompaniment.*.
``--set`` picks a validation set from acapella.model.validation.VALIDATION_SETS, read
from $ACAPELLA_DATA, else ../shared/data next to the repository (or from DATA_FOLDER when given).
``--against MODEL`` also scores MODEL on the same songs and prints how each
figure moved, song by song (mean change, its standard error, songs improved):
with a dozen songs the medians alone move by tenths of a dB on noise.
``--mixture-baseline`` scores the unseparated mixture as both stems: the floor a
separator has to beat, and it needs no model. ``--oracle`` scores the best mask
that a network could give with ``--model``'s STFT (``--oracle N_FFT,HOP`` for
another STFT), from the true stems: the ceiling of masking with that STFT. ``--post STEP``
runs a candidate post-step on the mask (``post_steps.py``): with ``--against`` the
same model without it, it measures what the step would bring. ``--gain DB`` turns each
mixture up or down before separating and the stems back after (SDR is scored at the
songs' own level): how a model copes with quieter or louder files than the set's.
``--pan-vocals P`` pans each song's vocals before mixing, -1 hard left to 1 hard right
(stereo songs; the panned stems are the references): how a model copes with a voice
off the centre, as on early stereo records. ``--degrade room`` plays both stems in one
reverberant room (a concert recording), ``--degrade rate=HZ`` stores them at a lower
sample rate (nothing above HZ / 2: a low-rate or old file), ``--degrade clip=DB`` turns
the mixture up until it peaks DB over full scale and clips it there, the stems sharing
the cut (a loud master; ``acapella.model.degradations.clipped``), ``--degrade limit=DB`` turns it
up by DB into a look-ahead limiter whose smooth gain both stems share (``limited``, the way
most loud masters are made), ``--degrade mp3=KBPS`` writes the song as an MP3 at KBPS kbit/s and
reads it back (``mp3_coded``: the vocals stay the song's own, the accompaniment takes the
coding error); the degraded stems are the references, so a model is scored on what is there to separate. Needs
acapella importable (``pip install -e .``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def _fmt(x: float) -> str:
    return f"{x:8.2f}" if math.isfinite(x) else f"{x!s:>8}"


def _print_row(name: str, r: dict) -> None:
    print(
        f"{name[:48]:48s} {_fmt(r['vocals']['sdr_v4'])} {_fmt(r['accompaniment']['sdr_v4'])}"
        f" {_fmt(r['vocals']['sdr_global'])} {_fmt(r['accompaniment']['sdr_global'])}"
        f" {r['separate_seconds']:7.2f}",
        flush=True,
    )


def _json_safe(x):
    # JSON has no NaN/inf; null keeps the file readable by strict parsers.
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written (None if it can), checked before hours of scoring, not after.

    Opened for appending, which changes no file, and removed again if it was not there:
    permission bits alone miss read-only file systems, /proc and the like."""
    if path.is_dir():
        return "is a folder"
    existed = path.exists()
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        return f"cannot be written ({e.strerror or e})"
    if not existed:
        path.unlink()
    return None


def at_gain(separate, db: float):
    """``separate`` fed the mixture scaled by ``db`` decibels, its stems scaled back."""
    if db == 0:
        return separate
    g = 10 ** (db / 20)

    def scaled(mixture, sample_rate):
        return {stem: x / g for stem, x in separate(mixture * g, sample_rate).items()}

    return scaled


def panned_vocals(position: float):
    """``prepare`` for evaluate_folder: the vocals panned to ``position`` (-1 left .. 1 right)."""
    from acapella.model.degradations import pan_stereo

    def prepare(refs, sample_rate):
        if refs.shape[2] != 2:
            raise ValueError(f"--pan-vocals needs stereo songs, got {refs.shape[2]} channel(s): use a stereo set such as musdb-valid")
        out = refs.copy()
        out[0] = pan_stereo(refs[0].T, position).T
        return out

    return prepare


def degraded(kind: str):
    """``prepare`` for evaluate_folder: both stems through ``room``, ``rate=HZ``, ``clip=DB``, ``limit=DB`` or ``mp3=KBPS`` (see --degrade).

    Each keeps the degraded mixture the sum of the degraded stems."""
    from acapella.model.degradations import band_limited, clipped, limited, mp3_coded, room

    if kind == "room":
        return lambda refs, sample_rate: np.stack([room(r.T, sample_rate).T for r in refs])
    name, _, value = kind.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if name == "clip" and math.isfinite(number) and number >= 0:
        return lambda refs, sample_rate: clipped(refs, number)
    if name == "limit" and math.isfinite(number) and number >= 0:
        return lambda refs, sample_rate: limited(refs.transpose(0, 2, 1), sample_rate, number).transpose(0, 2, 1)
    if name == "mp3" and math.isfinite(number) and number > 0:
        return lambda refs, sample_rate: np.stack(mp3_coded(refs[0].T, refs[1].T, sample_rate, int(number))).transpose(0, 2, 1)
    if name != "rate" or not number > 0:
        raise ValueError(f"--degrade {kind!r}: give room, rate=HZ, clip=DB, limit=DB or mp3=KBPS, "
                         "for example rate=16000 or mp3=128")
    rate = number
    return lambda refs, sample_rate: np.stack([band_limited(r.T, sample_rate, rate).T for r in refs])


def chained(*steps):
    """One ``prepare`` running each of ``steps`` (None skipped) in turn."""
    steps = [s for s in steps if s is not None]
    if not steps:
        return None

    def prepare(refs, sample_rate):
        for step in steps:
            refs = step(refs, sample_rate)
        return refs

    return prepare


def noting_vocal_pans(sep, found: list[float]):
    """``sep.separate`` that also notes ``sep.find_vocal_pan`` of each stereo mixture (what "auto" steers by)."""

    def separate(mixture, sample_rate):
        if mixture.ndim == 2 and mixture.shape[1] == 2:
            found.append(sep.find_vocal_pan(mixture, sample_rate))
        return sep.separate(mixture, sample_rate)

    return separate


def main(argv: list[str] | None = None) -> int:
    from acapella import options
    from acapella.evaluate import evaluate_folder, incomplete_songs, list_songs
    from acapella.model.validation import VALIDATION_SETS
    from paired import paired_change
    from acapella.onnx_model import bundled

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", type=Path, help="folder of song sub-folders")
    p.add_argument("--model", default="default", help="Separator model name (default: %(default)s)")
    p.add_argument("--threads", type=options.count, default=None, help="Separator threads")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--songs", help='song folder names separated by ";" (default: all)')
    which.add_argument("--set", choices=sorted(VALIDATION_SETS), help="a named validation set")
    p.add_argument(
        "--mixture-baseline", action="store_true", help="score the mixture itself, no model"
    )
    p.add_argument("--oracle", nargs="?", const="model", metavar="N_FFT,HOP",
                   help="score the ideal mask from the true stems, with --model's STFT or this one")
    p.add_argument("--post", metavar="STEP",
                   help="run a candidate post-step on --model's mask (see post_steps.py): wiener=N[:K], temperature=P, swap, shift=K")
    p.add_argument("--against", metavar="MODEL", help="compare with MODEL on the same songs, song by song")
    p.add_argument("--gain", type=float, default=0.0, metavar="DB",
                   help="turn each mixture up (or down, negative) by DB before separating, for every model scored")
    p.add_argument("--pan-vocals", type=float, default=None, metavar="P",
                   help="pan each song's vocals before mixing: -1 hard left, 0 centre, 1 hard right")
    p.add_argument("--degrade", metavar="KIND",
                   help="both stems through a room (room), a lower sample rate (rate=HZ), clipping DB over "
                        "full scale (clip=DB), a limiter driven DB (limit=DB) before mixing, or the mixture "
                        "through an MP3 file at KBPS kbit/s (mp3=KBPS)")
    p.add_argument("--per-channel", action="store_true",
                   help="separate each channel as a mono song (Separator(per_channel=True)), --model only")
    p.add_argument("--vocal-pan", default="auto", metavar="P",
                   help="Separator(vocal_pan=P) for --model: auto (the default) finds where the voice sits, "
                        "a number from -1 to 1 says it (0: the stereo field as it is); --against keeps auto")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--record", action="store_true",
                   help="store the aggregate in model/models.json under the model and --set "
                        "(bundled models, on the whole set only)")
    args = p.parse_args(argv)
    if args.record and (args.mixture_baseline or not args.set):
        p.error("--record needs --set and a model")
    if args.against and args.mixture_baseline:
        p.error("--against compares two models; drop --mixture-baseline")
    if args.post and (args.mixture_baseline or args.oracle or args.record):
        p.error("--post changes --model's engine: drop --mixture-baseline, --oracle and --record")
    if args.gain and (args.oracle or args.record or not math.isfinite(args.gain)):
        p.error(f"--gain {args.gain:g}: give a finite number of dB, without --oracle or --record "
                "(recorded figures are at the set's own level)")
    if args.pan_vocals is not None and (args.record or not -1.0 <= args.pan_vocals <= 1.0):
        p.error(f"--pan-vocals {args.pan_vocals:g}: give a position from -1 (hard left) to 1 (hard right), "
                "without --record (recorded figures are of the songs as they are)")
    degrade = None
    if args.degrade:
        try:
            degrade = degraded(args.degrade)
        except ValueError as e:
            p.error(str(e))
        if args.record:
            p.error(f"--degrade {args.degrade}: drop --record (recorded figures are of the songs as they are)")
    if args.per_channel and (args.mixture_baseline or args.oracle or args.post or args.record):
        p.error("--per-channel changes --model's engine: drop --mixture-baseline, --oracle, --post and --record")
    if args.vocal_pan != "auto":
        try:
            args.vocal_pan = float(args.vocal_pan)
        except ValueError:
            p.error(f"--vocal-pan {args.vocal_pan!r}: give auto or a number from -1 (hard left) to 1 (hard right)")
        if args.mixture_baseline or args.oracle or args.post or args.record:
            p.error("--vocal-pan changes --model's engine: drop --mixture-baseline, --oracle, --post and --record")
    if args.oracle and (args.mixture_baseline or args.record):
        p.error("--oracle scores no model: drop --mixture-baseline and --record")
    # models.json describes the bundled models by name: a path's figures would land under a
    # key that nothing reads, in the shipped file.
    if args.record and args.model not in bundled():
        p.error(f"--record stores figures of bundled models only, got --model {args.model!r}: "
                f"choose one of {', '.join(bundled())}, or write the figures elsewhere with --json")
    why = unwritable(args.json) if args.json else None
    if why:
        p.error(f"--json {args.json} {why}: give a file in an existing, writable folder")

    from acapella.model.paths import default_data_root

    data_root = default_data_root(beside=Path(__file__).resolve().parents[1])
    folder = args.folder or (data_root / VALIDATION_SETS[args.set].folder if args.set else None)
    if folder is None:
        p.error("give DATA_FOLDER or --set")
    if not folder.is_dir():
        p.error(f"{folder} is not a folder: give a folder of song sub-folders"
                + ("" if args.folder else f" (--set {args.set} reads {data_root})"))
    # list_songs leaves out a song folder that lacks a stem; say so, or the aggregate
    # would quietly cover fewer songs than the folder holds.
    for name, lacking in incomplete_songs(folder).items():
        if not args.songs and (not args.set or VALIDATION_SETS[args.set].contains(name)):
            print(f"quality.py: skipping {folder / name}: it has no {' and no '.join(lacking)}.* file",
                  file=sys.stderr)
    if args.set:
        vset = VALIDATION_SETS[args.set]
        songs = vset.select(list_songs(folder))
        missing = sorted(set(vset.songs) - set(songs))
        if missing or not songs:
            p.error(f"{folder} lacks songs of {args.set}: {'; '.join(missing) or 'all of them'}")
        if args.record and len(songs) != vset.full_size:
            p.error(f"--record: {folder} holds {len(songs)} clips of {args.set}, the whole set is "
                    f"{vset.full_size}: record only on the whole set, or write the figures with --json")
    else:
        songs = [s.strip() for s in args.songs.split(";") if s.strip()] if args.songs else None
        absent = [s for s in songs or () if not (folder / s).is_dir()]
        if absent:
            p.error(f"--songs: no song folder {absent[0]!r} in {folder}")

    found_pans: list[float] = []
    if args.mixture_baseline:
        label = "mixture baseline"

        def separate(mix, sr):
            return {"vocals": mix, "accompaniment": mix}

    elif args.oracle:
        from oracle import oracle_mask

        if args.oracle == "model":
            from acapella.onnx_model import OnnxModel

            try:
                m = OnnxModel(args.model)
            except ValueError as e:
                p.error(f"--oracle with --model {args.model}: {e}")
            n_fft, hop = m.n_fft, m.hop
        else:
            try:
                n_fft, hop = (int(v) for v in args.oracle.split(","))
            except ValueError:
                n_fft = hop = 0
            if n_fft < 1 or hop < 1:  # a zero hop would divide by zero in the STFT
                p.error(f"--oracle {args.oracle!r}: give N_FFT,HOP as two positive whole numbers, for example 4096,1024")
        label = f"oracle mask, n_fft {n_fft}, hop {hop}"
        try:
            separate = oracle_mask(n_fft, hop)
        except ValueError as e:
            p.error(f"--oracle {args.oracle}: {e}")

    else:
        from acapella import Separator

        label = f"model {args.model}"
        if args.post:
            from post_steps import separator

            try:
                separate = separator(args.post, args.model, args.threads).separate
            except ValueError as e:
                p.error(str(e))
            label += f", post-step {args.post}"
        else:
            try:
                sep = Separator(model=args.model, threads=args.threads, per_channel=args.per_channel,
                                vocal_pan=args.vocal_pan)
            except ValueError as e:
                p.error(str(e))
            separate = sep.separate
            if args.vocal_pan == "auto" and not args.per_channel:
                separate = noting_vocal_pans(sep, found_pans)
            if args.per_channel:
                label += ", each channel on its own"
            if args.vocal_pan != "auto":
                label += f", vocal pan {args.vocal_pan:+g}"

    against = None
    if args.against:
        from acapella import Separator

        # Loaded now: a bad name should stop the run before the first model's songs, not after.
        try:
            against = Separator(model=args.against, threads=args.threads)
        except ValueError as e:
            p.error(f"--against {args.against}: {e}")

    if args.gain:
        separate = at_gain(separate, args.gain)
        label += f", mixtures at {args.gain:+g} dB"
    prepare = chained(None if args.pan_vocals is None else panned_vocals(args.pan_vocals), degrade)
    if args.pan_vocals is not None:
        label += f", vocals panned to {args.pan_vocals:+g}"
    if degrade:
        label += f", degraded: {args.degrade}"
    print(f"{label} on {folder}")
    print(f"{'song':48s} {'voc v4':>8} {'acc v4':>8} {'voc glob':>8} {'acc glob':>8} {'sep s':>7}")
    try:
        results = evaluate_folder(separate, folder, songs=songs, progress=_print_row,
                                  with_references=bool(args.oracle), prepare=prepare)
    except ValueError as e:
        print(f"quality.py: {e}", file=sys.stderr)
        return 1

    agg = results["aggregate"]
    n = len(results["songs"])
    print(
        f"{'median over ' + str(n) + ' songs (v4)':48s}"
        f" {_fmt(agg['vocals']['sdr_v4'])} {_fmt(agg['accompaniment']['sdr_v4'])}"
    )
    print(
        f"{'mean over ' + str(n) + ' songs (global)':48s} {'':8} {'':8}"
        f" {_fmt(agg['vocals']['sdr_global'])} {_fmt(agg['accompaniment']['sdr_global'])}"
    )
    if found_pans:
        from acapella.panning import steer

        turned = sum(steer(f) != 0.0 for f in found_pans)
        print(f"vocal pan found (vocal_pan=\"auto\"): {min(found_pans):+.2f} to {max(found_pans):+.2f}; "
              f"field turned for {turned} of {len(found_pans)} songs")
        results["vocal_pans_found"] = found_pans

    if against is not None:
        try:
            base = evaluate_folder(at_gain(against.separate, args.gain), folder, songs=songs, prepare=prepare)
        except ValueError as e:
            print(f"quality.py: {e}", file=sys.stderr)
            return 1
        bagg = base["aggregate"]
        print(f"{'model ' + args.against + ', same songs':48s} {_fmt(bagg['vocals']['sdr_v4'])} "
              f"{_fmt(bagg['accompaniment']['sdr_v4'])} {_fmt(bagg['vocals']['sdr_global'])} "
              f"{_fmt(bagg['accompaniment']['sdr_global'])}")
        change = paired_change(results, base)
        cells = [change.get(stem, {}).get(fig) for fig in ("sdr_v4", "sdr_global") for stem in ("vocals", "accompaniment")]
        print(f"{'change per song: mean':48s}" + "".join(f" {_fmt(c['mean']) if c else _fmt(math.nan)}" for c in cells))
        print(f"{'  standard error':48s}" + "".join(f" {_fmt(c['stderr']) if c else _fmt(math.nan)}" for c in cells))
        print(f"{'  songs better / scored':48s}" + "".join(f" {c['better']:>4}/{c['songs']:<3}" if c else f" {'':8}" for c in cells))
        results["against"] = {"model": args.against, "aggregate": bagg, "change": change}

    if args.json:
        meta = {
            "model": None if args.mixture_baseline or args.oracle else args.model,
            "mixture_baseline": args.mixture_baseline,
            "oracle": label if args.oracle else None,
            "post": args.post,
            "gain_db": args.gain,
            "pan_vocals": args.pan_vocals,
            "degrade": args.degrade,
            "per_channel": args.per_channel,
            "vocal_pan": args.vocal_pan,
            "set": args.set,
            "folder": str(folder),
        }
        try:
            args.json.write_text(json.dumps(_json_safe({**meta, **results}), indent=2) + "\n")
        except OSError as e:  # checked up front, but the disk may have filled or the folder gone since
            print(f"quality.py: cannot write {args.json}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"wrote {args.json}")
    if args.record:
        path = Path(__file__).resolve().parents[1] / "model" / "models.json"
        card = json.loads(path.read_text()) if path.exists() else {}
        entry = card.setdefault(args.model, {}).setdefault("quality", {})
        entry[args.set] = _json_safe({
            "songs": n,
            "vocals_sdr_v4": round(agg["vocals"]["sdr_v4"], 2),
            "accompaniment_sdr_v4": round(agg["accompaniment"]["sdr_v4"], 2),
            "vocals_sdr_global": round(agg["vocals"]["sdr_global"], 2),
            "accompaniment_sdr_global": round(agg["accompaniment"]["sdr_global"], 2),
            "command": "python benchmarks/quality.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        })
        path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
