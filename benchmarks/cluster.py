"""Throughput of a cluster run on this machine, for 1 and 2 workers.

    python benchmarks/cluster.py [--songs 8] [--seconds 30] [--workers 1,2]

Writes `--songs` synthetic songs (`acapella.demo`, 44.1 kHz stereo) to a
temporary folder, starts a Dask scheduler and N `acapella worker` processes
(one network thread each) on 127.0.0.1 for each N in `--workers`, separates
the songs with `acapella.cluster.separate_library` from this process, and
prints songs per minute, hours of audio per hour, and the scheduler's
overhead per file: the wall time the workers were not separating, per file
((wall time x workers - the tasks' own seconds) / songs).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _local_cluster import local_cluster  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=8, help="songs in the library (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each song (default: %(default)s)")
    ap.add_argument("--workers", default="1,2", help="worker counts to measure (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise SystemExit(f"cluster.py: --workers must be whole numbers from 1, comma-separated, got {args.workers!r}")
    if args.songs < 1 or not 0 < args.seconds <= 3600:
        raise SystemExit(f"cluster.py: need --songs >= 1 and 0 < --seconds <= 3600, got {args.songs} and "
                         f"{args.seconds:g}")

    import distributed
    import soundfile as sf

    from acapella import demo
    from acapella.cluster import iter_library

    rows = []
    with tempfile.TemporaryDirectory(prefix="acapella-cluster-bench-") as tmp:
        tmp = Path(tmp)
        lib = tmp / "library"
        for i in range(args.songs):
            v, a = demo.song(args.seconds, 44100, seed=i)
            (lib / f"album{i % 2}").mkdir(parents=True, exist_ok=True)
            sf.write(lib / f"album{i % 2}" / f"song{i}.wav", (v + a).T, 44100)
        for n in counts:
            with local_cluster(tmp, n) as (address, _):
                with distributed.Client(address, timeout=60) as client:
                    client.wait_for_workers(n, timeout=120)
                    # One song first, so that every worker has loaded its model before the clock starts.
                    list(iter_library([next(lib.rglob("*.wav"))], tmp / f"warm-{n}", client=client))
                    t = time.perf_counter()
                    records = list(iter_library([lib], tmp / f"out-{n}", client=client))
                    wall = time.perf_counter() - t
            done = [r for r in records if r["status"] == "done"]
            if len(done) != args.songs:
                raise SystemExit(f"cluster.py: {args.songs - len(done)} song(s) failed with {n} worker(s): "
                                 f"{next(r['reason'] for r in records if r['status'] != 'done')}")
            busy = sum(r["seconds"] for r in done)
            audio = sum(r["audio_seconds"] for r in done)
            rows.append((n, wall, 60 * len(done) / wall, audio / wall, (wall * n - busy) / len(done)))

    print(f"{'workers':>7}{'seconds':>10}{'songs/min':>11}{'audio h/h':>11}{'overhead ms/file':>18}")
    for n, wall, spm, hph, over in rows:
        print(f"{n:>7}{wall:>10.1f}{spm:>11.1f}{hph:>11.1f}{1000 * over:>18.0f}")
    print(f"{args.songs} songs of {args.seconds:g} s, 44.1 kHz stereo; one `acapella worker --threads 1` per worker")


if __name__ == "__main__":
    main()
