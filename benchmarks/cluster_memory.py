"""Memory of a cluster run's driver and scheduler per 10,000 queued files.

    python benchmarks/cluster_memory.py [--files 10000] [--small 1000] [--workers 2]

Starts a Dask scheduler and `acapella worker` processes on 127.0.0.1, makes two
libraries in a temporary folder (`--small` and `--files` files in nested
folders), runs `acapella.cluster.separate_library` over each from a fresh
driver process, and prints each process's resident set size before the run
and at its peak (sampled every 50 ms), and the growth per 10,000 files from
the difference between the two libraries.

The files are short damaged WAVs that each fail at once on a worker: every
file still takes the whole path through the driver, the scheduler and a
worker (a task, a result, a manifest record), while the workers spend no time
separating, so 10,000 files take a minute rather than hours. A second pass
over the large library, where every file is already recorded, measures the
driver's resume index (the failures are skipped, as with ``--skip-failed``).
Also printed: the wall time per file, which with workers that do no work is
the cost of the round trip through the scheduler.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _local_cluster import local_cluster  # noqa: E402

DRIVER = r"""
import json, sys, threading, time, psutil
proc = psutil.Process()
from acapella.cluster import separate_library
import distributed
client = distributed.Client(sys.argv[1], timeout=60)
client.wait_for_workers(int(sys.argv[4]), timeout=120)
sched = psutil.Process(int(sys.argv[5]))
before = (proc.memory_info().rss, sched.memory_info().rss)
peak = list(before)
stop = threading.Event()
def sample():
    while not stop.wait(0.05):
        peak[0] = max(peak[0], proc.memory_info().rss)
        peak[1] = max(peak[1], sched.memory_info().rss)
threading.Thread(target=sample, daemon=True).start()
t = time.perf_counter()
report = separate_library([sys.argv[2]], sys.argv[3], client=client, skip_failed=sys.argv[6] == "1")
secs = time.perf_counter() - t
stop.set()
print(json.dumps({"before": before, "peak": peak, "seconds": secs, "done": report.done, "failed": report.failed,
                  "skipped": report.skipped}))
"""


def _library(root: Path, n: int) -> Path:
    """`n` damaged WAVs, 100 to a folder."""
    for i in range(n):
        folder = root / f"artist{i // 1000:03d}" / f"album{i // 100 % 10:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"track{i:06d}.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEdamaged")
    return root


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000, help="files in the large library (default: %(default)s)")
    ap.add_argument("--small", type=int, default=1_000, help="files in the small library (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default: %(default)s)")
    args = ap.parse_args(argv)
    if not 0 < args.small < args.files:
        raise SystemExit(f"cluster_memory.py: need 0 < --small < --files, got {args.small} and {args.files}")
    if args.workers < 1:
        raise SystemExit(f"cluster_memory.py: --workers must be at least 1, got {args.workers}")

    with tempfile.TemporaryDirectory(prefix="acapella-cluster-memory-") as tmp:
        tmp = Path(tmp)
        with local_cluster(tmp, args.workers) as (address, sched):
            rows = []
            runs = (("warm-up", 50, "out-warm", "0"), ("small", args.small, "out-small", "0"),
                    ("large", args.files, "out-large", "0"), ("large, resumed", args.files, "out-large", "1"))
            for name, n, out, skip in runs:
                lib = tmp / f"lib-{n}"
                if not lib.exists():
                    _library(lib, n)
                r = subprocess.run([sys.executable, "-c", DRIVER, address, str(lib), str(tmp / out),
                                    str(args.workers), str(sched.pid), skip], capture_output=True, text=True)
                if r.returncode != 0:
                    why = (r.stderr.strip().splitlines() or ["no message"])[-1]
                    raise SystemExit(f"cluster_memory.py: the driver failed: {why}")
                m = json.loads(r.stdout.strip().splitlines()[-1])
                if name != "warm-up":  # the scheduler's first tasks grow it once, whatever their number
                    rows.append((name, n, m))

    mb = 1 / 2**20
    print(f"{'library':<16}{'files':>8}{'driver MB':>18}{'scheduler MB':>20}{'seconds':>10}{'ms/file':>9}")  # wall time
    print(f"{'':<16}{'':>8}{'before -> peak':>18}{'before -> peak':>20}")
    for name, n, m in rows:
        (db, sb), (dp, sp) = m["before"], m["peak"]
        print(f"{name:<16}{n:>8}{db * mb:>9.0f} -> {dp * mb:<5.0f}{sb * mb:>11.0f} -> {sp * mb:<5.0f}"
              f"{m['seconds']:>10.1f}{1000 * m['seconds'] / n:>9.2f}")
    small, large = rows[0][2], rows[1][2]
    per = 10_000 / (args.files - args.small)
    d = ((large["peak"][0] - large["before"][0]) - (small["peak"][0] - small["before"][0])) * per * mb
    s = ((large["peak"][1] - large["before"][1]) - (small["peak"][1] - small["before"][1])) * per * mb
    print(f"growth per 10,000 files: driver {d:.1f} MB, scheduler {s:.1f} MB "
          f"({args.workers} workers; each file one task, one result, one manifest record)")
    counts = [f"{name}: {m['failed']} failed, {m['skipped']} skipped" for name, _, m in rows]
    print("; ".join(counts))


if __name__ == "__main__":
    main()
