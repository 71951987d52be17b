"""End-to-end speed of `Separator` on 44.1 kHz stereo, as x realtime.

    python benchmarks/speed.py [--models default,acapellabot] [--seconds 240] [--runs 5] [--threads 2]
                               [--chunks 60,30] [--vocal-pans auto,0]

Prints a table of medians over runs. Timings on shared machines are noisy, so
the runs of all rows are taken in turn, and each row also gives its ratio to a
reference measured in the same turns: one numpy STFT + inverse STFT pass over
the same audio (`acapella.transforms`).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from acapella import Separator
from acapella.stream import CHUNK_SECONDS
from acapella.transforms import STFT


def median_times(cases: list, runs: int) -> list[float]:
    """The median time of each callable, with the runs taken in turn (one of each per round).

    The machine's speed drifts by more than the gaps between models over the
    minutes a benchmark takes; in turns, each case sees the same drift.
    """
    times = [[] for _ in cases]
    for _ in range(runs):
        for fn, out in zip(cases, times):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="default,acapellabot")
    ap.add_argument("--seconds", type=float, default=240.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--chunks", default=f"{CHUNK_SECONDS:g}",
                    help="comma-separated chunk_seconds to time each model at (default: the default chunk)")
    ap.add_argument("--vocal-pans", default="auto",
                    help="comma-separated Separator vocal_pan settings to time each model at (default: auto); "
                         "auto spends its extra time finding the voice")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    n = int(args.seconds * args.rate)
    audio = (rng.standard_normal((2, n)) * 0.1).astype(np.float32)
    stft = STFT(2048, 512)
    labels, cases = ["reference: STFT+iSTFT"], [lambda: stft.inverse(stft.forward(audio), n)]
    chunks = [float(c) for c in args.chunks.split(",")]
    pans = [p if p == "auto" else float(p) for p in args.vocal_pans.split(",")]
    for name in args.models.split(","):
        for chunk in chunks:
            for pan in pans:
                sep = Separator(model=name, threads=args.threads, chunk_seconds=chunk, vocal_pan=pan)
                sep.separate(audio[:, : args.rate], args.rate)  # warm-up
                labels.append(f"{name} end to end" + (f", {chunk:g} s chunks" if len(chunks) > 1 else "")
                              + (f", vocal pan {pan}" if len(pans) > 1 else ""))
                cases.append(lambda sep=sep: sep.separate(audio, args.rate))
    times = median_times(cases, args.runs)
    rows = [(label, t, args.seconds / t, t / times[0]) for label, t in zip(labels, times)]
    print(f"{args.seconds:.0f} s of {args.rate} Hz stereo, {args.threads} threads, "
          f"median of {args.runs} runs taken in turn")
    width = max(28, *(len(r[0]) for r in rows))
    print(f"{'what':{width}} {'seconds':>8} {'x realtime':>11} {'x reference':>12}")
    for what, t, rt, ratio in rows:
        print(f"{what:{width}} {t:8.2f} {rt:11.1f} {ratio:12.1f}")


if __name__ == "__main__":
    main()
