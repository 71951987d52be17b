"""Peak memory of `acapella separate` on a long file, at any channel count.

    python benchmarks/memory.py [--minutes 20] [--rate 44100] [--channels 2,8,32]

Writes a synthetic file of the given length and channel count to a temporary
folder (in blocks, so this script stays small too), runs the command on it in a
child process, and prints the child's peak resident set size, next to that of a
child that only imports acapella, as a reference from the same run. Memory is
meant to be bounded by the chunk, whatever the length and the channel count.
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Runs `cmd` through a wrapper child that reports its own child's peak RSS."""
    code = ("import resource, subprocess, sys, time; t = time.time(); "
            "r = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.time() - t, r.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True)
    mb, secs, rc = out.stdout.split()[-3:]
    if rc != "0":
        # The child's stderr is captured with the wrapper's; its last line says what went wrong.
        why = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"memory.py: command failed: {' '.join(cmd)}: {why}")
    return float(mb), float(secs)


BLOCK_SECONDS = 10  # the file is written a block at a time, so this script stays small


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--model", default="default")
    ap.add_argument("--channels", default="2", help="comma-separated channel counts to measure (default: 2)")
    args = ap.parse_args(argv)
    try:
        counts = [int(c) for c in args.channels.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        ap.error(f"--channels {args.channels}: give whole numbers of channels of at least 1, comma-separated")
    # Shorter than a block, the run measures little beyond loading the model.
    if not (math.isfinite(args.minutes) and args.minutes * 60 >= BLOCK_SECONDS):
        ap.error(f"--minutes {args.minutes:g}: give at least {BLOCK_SECONDS / 60:.3g} (one {BLOCK_SECONDS}-second block)")
    if args.rate < 1:
        ap.error(f"--rate {args.rate}: give a sample rate in Hz above 0")
    from acapella.onnx_model import resolve

    try:  # before minutes of writing the file
        resolve(args.model)
    except ValueError as e:
        ap.error(f"--model: {e}")
    rows = []
    base = None
    for channels in counts:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "long.wav"
            rng = np.random.default_rng(0)
            block = args.rate * BLOCK_SECONDS
            total = round(args.minutes * 60 * args.rate)  # the length asked for, the last block cut to fit
            with sf.SoundFile(src, "w", samplerate=args.rate, channels=channels, subtype="PCM_16") as f:
                for start in range(0, total, block):
                    f.write((rng.standard_normal((min(block, total - start), channels)) * 0.1).astype(np.float32))
            minutes = sf.info(str(src)).frames / args.rate / 60  # what was measured, read back from the file
            if base is None:
                base, _ = peak_rss_mb([sys.executable, "-c", "import acapella.separator"])
            exe = [sys.executable, "-m", "acapella.cli"]
            peak, secs = peak_rss_mb([*exe, "separate", str(src), "-o", str(Path(tmp) / "out"), "--quiet",
                                      "--model", args.model])
        rows.append((f"acapella separate, {channels} channel{'s' if channels > 1 else ''}", peak, secs))
    layout = "stereo" if counts == [2] else f"audio at {', '.join(map(str, counts))} channels"
    print(f"{minutes:.4g} min of {args.rate} Hz {layout}, model {args.model}")
    print(f"{'process':32} {'peak RSS (MB)':>14} {'seconds':>8}")
    print(f"{'import acapella (reference)':32} {base:14.0f} {'':>8}")
    for what, peak, secs in rows:
        print(f"{what:32} {peak:14.0f} {secs:8.1f}")

if __name__ == "__main__":
    main()
