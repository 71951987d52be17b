"""Latency and separation cost of the effects' latency settings, on the validation songs.

    python benchmarks/latency.py [--set musdb-valid] [--data ROOT] [--block 512] [--model default]
                                 [--modes offline,low,lowest] [--try FUTURE:CHUNK,...]
                                 [--max-songs N] [--json out.json]

Each song's mixture (vocals + accompaniment) is streamed through a
`VocalIsolator` of each ``mode`` in blocks of ``--block`` samples with
``reset=False``, then flushed, as a live user would run it; the accompaniment
is the mixture minus those vocals, which is what `VocalRemover` outputs. It
prints, per setting: the latency in ms at the songs' rate, the median over
songs of the BSS Eval v4 SDR (median over 1 s frames) of each stem, the
difference from "offline" (identical to `Separator.separate`), and the compute
time as a fraction of the audio's duration (under 1 is faster than real time).
The songs are read from ``../shared/data`` next to the repository (or ROOT).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def streamed(effect, mixture: np.ndarray, rate: int, block: int) -> np.ndarray:
    """(samples, channels) in; the effect's streamed and flushed output, same shape."""
    effect.reset()
    parts = [effect.process(mixture[i:i + block], rate, reset=False) for i in range(0, len(mixture), block)]
    parts.append(effect.flush())
    return np.concatenate(parts, axis=0)


def main(argv: list[str] | None = None) -> int:
    from acapella import Separator, VocalIsolator
    from acapella.effects import MODES
    from acapella.evaluate import evaluate_folder, list_songs
    from acapella.model.validation import VALIDATION_SETS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", default="musdb-valid", choices=sorted(VALIDATION_SETS))
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_ROOT, help="shared data root")
    p.add_argument("--block", type=int, default=512, help="streamed block size in samples")
    p.add_argument("--model", default="default")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated settings")
    p.add_argument("--try", dest="extra", default="",
                   help="extra settings to compare, as FUTURE:CHUNK seconds, comma-separated (e.g. 0.2:0.1)")
    p.add_argument("--max-songs", type=int, default=None, help="only the first N songs (a quick check)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.block < 1:
        p.error(f"--block {args.block}: give a block size of at least 1 sample")
    # A slice [:N] with N <= 0 would drop songs from the end (or all of them) without a word.
    if args.max_songs is not None and args.max_songs < 1:
        p.error(f"--max-songs {args.max_songs}: give at least 1, or leave it out for every song")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads {args.threads}: give at least 1")

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"unknown mode {bad[0]!r}: choose from {', '.join(MODES)}")
    if "offline" not in modes:
        modes.insert(0, "offline")
    for item in filter(None, (t.strip() for t in args.extra.split(","))):
        try:
            future, chunk = (float(v) for v in item.split(":"))
        except ValueError:
            p.error(f"--try wants FUTURE:CHUNK in seconds, got {item!r}")
        # Checked here, as the pipeline would check them, but before the offline pass has run.
        if not (math.isfinite(future) and future >= 0 and math.isfinite(chunk) and chunk > 0):
            p.error(f"--try {item!r}: FUTURE must be 0 or more seconds and CHUNK more than 0, for example 0.2:0.1")
        MODES[item] = (future, chunk)  # a setting for this run only
        modes.append(item)
    vset = VALIDATION_SETS[args.set]
    folder = args.data / vset.folder
    if not folder.is_dir():
        p.error(f"{folder} not found: the validation songs are read from the shared data folder")
    songs = vset.select(list_songs(folder))[:args.max_songs]
    if not songs:
        p.error(f"no songs of {args.set} in {folder}")

    try:
        sep = Separator(model=args.model, threads=args.threads)
    except ValueError as e:
        p.error(f"--model: {e}")
    rows = {}
    for mode in modes:
        effect = VocalIsolator(mode=mode, separator=sep)
        timing = {"compute": 0.0, "audio": 0.0, "rate": None}

        def separate(mix, rate, effect=effect, timing=timing):
            start = time.perf_counter()
            vocals = streamed(effect, mix, rate, args.block)
            timing["compute"] += time.perf_counter() - start
            timing["audio"] += len(mix) / rate
            timing["rate"] = rate
            return {"vocals": vocals, "accompaniment": mix - vocals}

        try:
            res = evaluate_folder(separate, folder, songs=songs)
        except ValueError as e:  # an unreadable or mismatched song: say which, without a traceback
            print(f"latency.py: {e}", file=sys.stderr)
            return 1
        agg = res["aggregate"]
        rate = timing["rate"]
        rows[mode] = {
            "latency_samples": effect.latency_at(rate),
            "latency_ms": 1000.0 * effect.latency_at(rate) / rate,
            "vocals_sdr_v4": agg["vocals"]["sdr_v4"],
            "accompaniment_sdr_v4": agg["accompaniment"]["sdr_v4"],
            "vocals_sdr_global": agg["vocals"]["sdr_global"],
            "accompaniment_sdr_global": agg["accompaniment"]["sdr_global"],
            "realtime_factor": timing["compute"] / timing["audio"],
            "future_seconds": MODES[mode][0],
            "chunk_seconds": MODES[mode][1],
        }
        print(f"{mode}: done", file=sys.stderr, flush=True)

    ref = rows["offline"]
    print(f"{len(songs)} songs of {args.set}, model {args.model}, streamed in {args.block}-sample blocks")
    print()
    print("| mode | latency (ms) | vocals SDR v4 (dB) | accompaniment SDR v4 (dB) "
          "| vocals vs offline | accompaniment vs offline | compute / audio time |")
    print("|---|---|---|---|---|---|---|")
    for mode, r in rows.items():
        dv = r["vocals_sdr_v4"] - ref["vocals_sdr_v4"]
        da = r["accompaniment_sdr_v4"] - ref["accompaniment_sdr_v4"]
        print(f"| `{mode}` | {r['latency_ms']:.0f} | {r['vocals_sdr_v4']:.2f} | {r['accompaniment_sdr_v4']:.2f} "
              f"| {dv:+.2f} | {da:+.2f} | {r['realtime_factor']:.2f} |")
    if args.json:
        safe = {m: {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for m, r in rows.items()}
        args.json.write_text(json.dumps({"set": args.set, "model": args.model, "block": args.block,
                                         "songs": songs, "modes": safe}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
