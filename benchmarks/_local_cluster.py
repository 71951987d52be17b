"""A Dask scheduler and `acapella worker` processes on 127.0.0.1, for the cluster benchmarks."""
from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_cluster(folder: Path, workers: int):
    """Yields (scheduler address, scheduler process); stops every process by its pid at the end."""
    port = _port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(folder / f"cluster-{port}.log", "wb")
    procs = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                       "--port", str(port), "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                                      stdout=log, stderr=subprocess.STDOUT))
        for i in range(workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "acapella.cli", "worker", address, "--threads", "1", "--host", "127.0.0.1",
                 "--local-directory", str(folder / f"worker-{port}-{i}")], stdout=log, stderr=subprocess.STDOUT))
        yield address, procs[0]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        log.close()
