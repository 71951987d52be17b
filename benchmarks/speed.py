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
import math
import statistics
import time

import numpy as np

from acapella import Separator, options
from acapella.onnx_model import resolve
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


def number_list(text: str, what: str, check, words: tuple[str, ...] = ()) -> list:
    """The comma-separated items of ``text``: each one of ``words``, or a float passing ``check``."""
    items = []
    for item in (t.strip() for t in text.split(",")):
        try:
            value = item if item in words else float(item)
        except ValueError:
            value = None
        if value is None or (value not in words and not check(value)):
            raise ValueError(f"{item!r}: give {what}, comma-separated")
        items.append(value)
    return items


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="default,acapellabot")
    ap.add_argument("--seconds", type=options.seconds, default=240.0)
    ap.add_argument("--runs", type=options.count, default=5)
    ap.add_argument("--threads", type=options.count, default=2)
    ap.add_argument("--rate", type=options.count, default=44100)
    ap.add_argument("--chunks", default=f"{CHUNK_SECONDS:g}",
                    help="comma-separated chunk_seconds to time each model at (default: the default chunk)")
    ap.add_argument("--vocal-pans", default="auto",
                    help="comma-separated Separator vocal_pan settings to time each model at (default: auto); "
                         "auto spends its extra time finding the voice")
    args = ap.parse_args(argv)
    try:
        chunks = number_list(args.chunks, "chunk lengths in seconds above 0",
                             lambda c: math.isfinite(c) and c > 0)
    except ValueError as e:
        ap.error(f"--chunks {e}")
    try:
        pans = number_list(args.vocal_pans, "auto or pans from -1 (hard left) to 1 (hard right)",
                           lambda v: -1 <= v <= 1, words=("auto",))
    except ValueError as e:
        ap.error(f"--vocal-pans {e}")
    names = [m.strip() for m in args.models.split(",")]
    for name in names:
        try:
            resolve(name)
        except ValueError as e:
            ap.error(f"--models: {e}")
    if args.seconds * args.rate < 1:
        ap.error(f"--seconds {args.seconds:g} at --rate {args.rate} is under one sample: give more seconds")

    rng = np.random.default_rng(0)
    n = int(args.seconds * args.rate)
    audio = (rng.standard_normal((2, n)) * 0.1).astype(np.float32)
    stft = STFT(2048, 512)
    labels, cases = ["reference: STFT+iSTFT"], [lambda: stft.inverse(stft.forward(audio), n)]
    for name in names:
        for chunk in chunks:
            for pan in pans:
                try:  # a file that exists but is no model only shows here
                    sep = Separator(model=name, threads=args.threads, chunk_seconds=chunk, vocal_pan=pan)
                except ValueError as e:
                    ap.error(f"--models {name}: {e}")
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
