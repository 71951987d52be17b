"""What runs on a Dask worker for `acapella.cluster`: the plugin that holds the `Separator`, and the task.

Imported by the workers (and by the driver, to build the plugin); it needs Dask
distributed, which ``pip install 'acapella[cluster]'`` brings.
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.utils import sync
from distributed.worker import thread_state

from acapella.cluster import (KILL_HOOK, PLUGIN_NAME, WORKER_THREADS, ClusterError, PathMap, _reason, _version,
                              file_digest)

# Per worker process: the separators loaded, by their settings, and how many loads that took.
# A plugin registered again (a second run with the same settings) finds its separator here.
_SEPARATORS: dict[tuple, object] = {}
_LOADS = {"count": 0}
_LOCK = threading.Lock()


class SeparatorPlugin(WorkerPlugin):
    """Loads one `Separator` per worker process, once, and checks it against the driver's.

    A bundled model comes from the worker's own installed package, and its hash
    must match the driver's. A custom model travels in the plugin as bytes: the
    driver's own file is used where the worker sees it (through the path map)
    with the same hash, else the bytes are written once to the worker's local
    directory. A worker that cannot match the driver keeps a one-line `problem`
    and refuses every task.
    """

    name = PLUGIN_NAME

    def __init__(self, version: str, model: str, model_bytes: bytes | None, digest: str, settings: dict,
                 path_map: PathMap):
        self.version, self.model, self.model_bytes, self.digest = version, model, model_bytes, digest
        self.settings, self.path_map = settings, path_map
        self.separator = None
        self.problem: str | None = None

    def __getstate__(self):
        return {**self.__dict__, "separator": None, "problem": None}

    def setup(self, worker):
        try:
            self.separator = self._load(worker)
        except Exception as exc:
            self.problem = f"worker {worker.address} cannot load model {self.model}: {_reason(exc)}"

    def _model_path(self, worker) -> Path:
        from acapella import onnx_model as models

        if self.model_bytes is None:
            return models.resolve(self.model)
        shared = Path(self.path_map.to_worker(self.model))
        if shared.is_file() and file_digest(shared) == self.digest:
            return shared  # the driver's own file on shared storage: records name it as a local run does
        path = Path(worker.local_directory) / "acapella-models" / f"{self.digest}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
            tmp.write_bytes(self.model_bytes)
            os.replace(tmp, path)
        return path

    def _load(self, worker):
        from acapella.separator import Separator

        if _version() != self.version:
            self.problem = (f"worker {worker.address} runs acapella {_version()}, the driver {self.version}: "
                            "install the same version everywhere")
            return None
        path = self._model_path(worker)
        found = file_digest(path)
        if found != self.digest:
            self.problem = (f"worker {worker.address} has model {self.model} with hash {found[:12]}, "
                            f"the driver {self.digest[:12]}: install the same acapella everywhere")
            return None
        s = self.settings
        threads = s.get("threads") or (int(os.environ[WORKER_THREADS]) if os.environ.get(WORKER_THREADS) else None)
        key = (self.digest, threads, s["chunk_seconds"], s["per_channel"], s["vocal_pan"])
        with _LOCK:
            if key not in _SEPARATORS:
                _SEPARATORS[key] = Separator(model=path, threads=threads, chunk_seconds=s["chunk_seconds"],
                                             per_channel=s["per_channel"], vocal_pan=s["vocal_pan"])
                _LOADS["count"] += 1
            return _SEPARATORS[key]


def plugin_problem(dask_worker) -> str | None:
    """The worker's one-line reason to refuse tasks, if it has one (run through ``client.run``)."""
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    return plugin.problem if plugin is not None else f"worker {dask_worker.address} did not load acapella's plugin"


def identity() -> dict:
    """What the driver checks of each worker: acapella's version and the bundled models' hashes."""
    from acapella import onnx_model as models

    return {"version": _version(), "pid": os.getpid(), "host": socket.gethostname(),
            "models": {name: file_digest(models.resolve(name)) for name in models.bundled()},
            "loads": _LOADS["count"]}


class Cancelled(Exception):
    """The driver let go of this task (Ctrl-C): stop between blocks, leaving no partial stem."""


def separate(job, out_dir: str, options, run: str) -> dict:
    """One input on this worker: `acapella.outputs.run_job` with the worker's separator, timed, the worker named.

    Says on the run's event topic that it started, before any work, so that the
    driver counts an attempt only for the input that was running when a worker died.
    """
    from acapella.outputs import run_job

    worker = get_worker()
    key = getattr(thread_state, "key", None)
    # Sent and acknowledged before any work (`Worker.log_event` would batch it, and a worker killed at once
    # would never send it), so that the driver has it before it can hear that this worker died.
    sync(worker.loop, worker.scheduler.log_event, topic=f"acapella-{run}",
         msg={"key": key, "worker": worker.address, "pid": os.getpid()})
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is None or plugin.problem or plugin.separator is None:
        raise ClusterError(plugin.problem if plugin is not None and plugin.problem
                           else f"worker {worker.address} has no acapella separator loaded")
    kill_on = os.environ.get(KILL_HOOK)
    doomed = bool(kill_on) and kill_on in os.fsdecode(job.source)

    def progress(done: int) -> None:
        if doomed:
            os.kill(os.getpid(), signal.SIGKILL)
        ts = worker.state.tasks.get(key)
        if ts is None or ts.state in ("cancelled", "released", "forgotten"):
            raise Cancelled("cancelled by the driver")

    start = time.monotonic()
    record = run_job(job, out_dir, plugin.separator, options, progress=progress)
    record["worker"] = worker.address
    record["seconds"] = round(time.monotonic() - start, 3)
    record["audio_seconds"] = _duration(job.source) if record.get("status") == "done" else None
    return record


def _duration(path) -> float | None:
    from acapella.files import Reader

    try:
        with Reader(path) as r:
            return r.frames / r.sample_rate
    except Exception:
        return None
