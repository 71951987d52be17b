"""A whole library on a Dask cluster: the driver, the worker plugin and the resumable manifest.

    dask scheduler --host 10.0.0.1 --port 8786
    acapella worker tcp://10.0.0.1:8786                 (on every machine)
    acapella separate LIBRARY -o STEMS --cluster tcp://10.0.0.1:8786

or, from Python, with any Dask client (dask-jobqueue, Kubernetes, SLURM)::

    >>> from acapella.cluster import separate_library
    >>> report = separate_library(["LIBRARY"], "STEMS", client=client)  # doctest: +SKIP
    >>> report.done, report.failed                                         # doctest: +SKIP

Only paths travel: inputs and outputs live on storage that every worker mounts
(``path_map`` translates where the mounts differ). Each worker loads the model
once and holds one `Separator`; every input then goes through
`acapella.outputs.run_job`, the same job a local ``acapella separate`` runs, so
both write the same stems under the same names.

The driver alone appends ``STEMS/.acapella/manifest.jsonl`` (one fsynced record
per finished input) and holds ``STEMS/.acapella/lock`` while it runs; a rerun
skips what is done with the same options, redoes what changed and retries
earlier failures unless ``skip_failed``. The library is walked as a generator
and only `per_worker` tasks per worker thread are in flight, so the driver and
the scheduler hold a window of the library, never all of it.

A worker that dies while it separates a file (SIGKILL, the out-of-memory
killer, a crash in a native decoder) costs that file one attempt; it is tried
again up to `retries` times and then reported. Only the attempt that was
running counts: an input that was waiting on the dead worker is sent again as
if nothing happened, so one file that kills every worker it reaches never takes
innocent files down with it. To count attempts itself, the driver sets the
scheduler's ``allowed_failures`` to 0 for the length of a run (and restores it).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import itertools
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from acapella.stems import STEMS

MANIFEST_DIR = ".acapella"
MANIFEST = "manifest.jsonl"
LOCK = "lock"
PLUGIN_NAME = "acapella-separator"
DEFAULT_RETRIES = 2
# Inert unless set in a worker's environment: a worker that reaches an input whose name contains this
# text kills itself mid-file, every time (the test of a file that kills its worker).
KILL_HOOK = "ACAPELLA_TEST_KILL_WORKER_ON"
WORKER_THREADS = "ACAPELLA_WORKER_THREADS"  # set by `acapella worker --threads N`
CONNECT_TIMEOUT = 10.0
STATUS_EVERY = 30.0  # seconds between status lines when stderr is not a terminal


class ClusterError(RuntimeError):
    """A run that cannot start or go on: one line that says what is wrong and what to do."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError("--cluster needs Dask distributed: pip install 'acapella[cluster]'") from None
    return distributed


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _version() -> str:
    from acapella import __version__

    return __version__


@dataclass(frozen=True)
class PathMap:
    """``DRIVER_PREFIX=WORKER_PREFIX`` pairs: how a path on the driver reads on the workers."""

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str] | None) -> "PathMap":
        pairs = []
        for item in items or ():
            driver, sep, worker = str(item).partition("=")
            if not sep or not driver or not worker:
                raise ValueError(f"--path-map {item!r}: give DRIVER_PREFIX=WORKER_PREFIX, e.g. /mnt/music=/data/music")
            pairs.append((os.path.normpath(driver), os.path.normpath(worker)))
        return cls(tuple(pairs))

    @staticmethod
    def _swap(path, pairs) -> str:
        text = os.fsdecode(path)
        for a, b in pairs:
            if text == a or text.startswith(a.rstrip(os.sep) + os.sep):
                return b + text[len(a):]
        return text

    def to_worker(self, path):
        return self._swap(path, self.pairs)

    def to_driver(self, path):
        return self._swap(path, [(b, a) for a, b in self.pairs])


# --- the manifest -------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _key(path: str) -> bytes:
    """16 bytes per input in the driver's index, whatever the length of its path."""
    return hashlib.blake2b(os.fsencode(path), digest_size=16).digest()


class Manifest:
    """``OUT/.acapella/manifest.jsonl``: one record per finished input, appended and fsynced by the driver alone.

    Opening it takes ``OUT/.acapella/lock`` (an exclusive ``flock``, released when
    the process ends however it ends), so two drivers never write one folder.
    The last record of each input is indexed in a compact form, for resuming.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.folder = Path(out_dir) / MANIFEST_DIR
        self.path = self.folder / MANIFEST
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ClusterError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(self._lock, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(self._lock)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ClusterError(f"{self.folder.parent} is being written by another acapella run ({holder}): "
                                   "wait for it to finish, or choose another -o") from None
            raise
        os.ftruncate(self._lock, 0)
        os.pwrite(self._lock, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self.index: dict[bytes, tuple] = {}
        if self.path.exists():
            with open(self.path, "rb") as f:
                for line in f:
                    try:
                        r = json.loads(line)
                        self._index(r)
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a crash: its input is simply done again
        self._out = open(self.path, "ab")

    def previous(self, path: str) -> tuple | None:
        return self.index.get(_key(path))

    def append(self, record: dict) -> None:
        self._out.write(json.dumps(record, ensure_ascii=True).encode() + b"\n")
        self._out.flush()
        os.fsync(self._out.fileno())
        self._index(record)

    def _index(self, r: dict) -> None:
        self.index[_key(r["input"])] = (r.get("size"), r.get("mtime_ns"),
                                        # one string shared by every record of a run, not one each
                                        sys.intern(_options_key(r.get("options") or {}, r.get("model_hash"))),
                                        r.get("status"), r.get("reason"))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            os.close(self._lock)


# --- the driver ---------------------------------------------------------------------------------


FAILURES_KEPT = 1000  # in a Report; the manifest holds every one


@dataclass
class Report:
    """What a run did: counts, the first `FAILURES_KEPT` failures with their reasons, time and audio separated."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0
    manifest: Path | None = None

    def add(self, record: dict) -> None:
        status = record.get("status")
        if status == "done":
            self.done += 1
            self.audio_seconds += record.get("audio_seconds") or 0.0
        elif status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
            if len(self.failures) < FAILURES_KEPT:
                self.failures.append((record.get("input"), record.get("reason")))


@contextlib.contextmanager
def _connected(client, cluster, timeout: float):
    """The client to use: the one given, one to the scheduler at `cluster`, or one to a new LocalCluster."""
    distributed = _distributed()
    if client is not None:
        yield client
        return
    if cluster is None:
        raise ClusterError("give a Dask client, or a cluster: a scheduler address or local[:N]")
    own_cluster = None
    if isinstance(cluster, str) and (cluster == "local" or cluster.startswith("local:")):
        n = cluster.partition(":")[2] or str(max(1, (os.cpu_count() or 1)))
        if not n.isdigit() or int(n) < 1:
            raise ClusterError(f"--cluster {cluster}: give local or local:N with N at least 1")
        own_cluster = distributed.LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True,
                                               host="127.0.0.1", scheduler_port=0,
                                               # the HTTP servers too, which listen even without a dashboard
                                               dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
        address = own_cluster
    else:
        address = cluster
    try:
        try:
            c = distributed.Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {cluster} within {timeout:g} s "
                               f"({_reason(exc) or 'timed out'}): is `dask scheduler` running there?") from None
        try:
            yield c
        finally:
            c.close()
    finally:
        if own_cluster is not None:
            own_cluster.close()


def _wait_for_workers(client, address, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = client.scheduler_info(n_workers=-1)["workers"] if _accepts_n_workers(client) else \
            client.scheduler_info()["workers"]
        if info:
            return info
        if time.monotonic() > deadline:
            raise ClusterError(f"no workers joined the scheduler at {address} within {timeout:g} s: "
                               f"start some with `acapella worker {address}`")
        time.sleep(0.2)


def _accepts_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def _check_workers(client, plugin, address) -> None:
    """Refuses, in one line naming them, workers whose acapella or model differs from the driver's."""
    from acapella import worker

    ids = client.run(worker.identity, on_error="return")
    wrong = []
    for addr, ident in sorted(ids.items()):
        if isinstance(ident, BaseException):  # most often: acapella is not installed there
            wrong.append(f"{addr} ({type(ident).__name__}: {_reason(ident)})")
        elif ident["version"] != plugin.version:
            wrong.append(f"{addr} (acapella {ident['version']})")
        elif plugin.model_bytes is None and ident["models"].get(plugin.model) != plugin.digest:
            found = ident["models"].get(plugin.model)
            wrong.append(f"{addr} (model {plugin.model} " + (f"hash {found[:12]})" if found else "missing)"))
    if wrong:
        raise ClusterError(f"workers differ from the driver (acapella {plugin.version}, model {plugin.model} "
                           f"hash {plugin.digest[:12]}): {', '.join(wrong)}: install the same acapella everywhere")


def _run_options(options, settings: dict) -> dict:
    """What makes two runs' stems of one input the same, with the model's hash: stems, format, the settings
    that change the audio."""
    return {"stems": list(options.stems), "format": options.format, "per_channel": settings["per_channel"],
            "vocal_pan": settings["vocal_pan"]}


def _options_key(options: dict, digest: str) -> str:
    return json.dumps({**options, "model_hash": digest}, sort_keys=True)


def _stat(path: Path) -> tuple[int | None, int | None]:
    try:
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return None, None


@dataclass
class _Attempt:
    job: object
    n: int  # position in the library
    size: int | None
    mtime_ns: int | None
    attempts: int = 0  # tries that started on a worker that then died
    unseen: int = 0  # deaths of a worker it was waiting on, before it started


def iter_library(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *, client=None, cluster=None,
                 model: str | os.PathLike = "default", stems: Iterable[str] = STEMS, format: str = "wav",
                 chunk_seconds: float | None = None, threads: int | None = None, per_channel: bool = False,
                 vocal_pan: float | str = "auto", force: bool = False, plot: bool = False,
                 retries: int = DEFAULT_RETRIES, skip_failed: bool = False,
                 path_map: PathMap | Iterable[str] | None = None, per_worker: int = 2,
                 connect_timeout: float = CONNECT_TIMEOUT, workers_timeout: float = 60.0,
                 progress=None, report: "Report | None" = None) -> Iterator[dict]:
    """Separates every audio file under `inputs` on a Dask cluster; yields each input's record as it finishes.

    The records are those of ``acapella separate --json`` (``input``, ``status``
    done, skipped or failed, ``reason``, ``folder``, ``stems``), with ``attempts``,
    ``worker``, ``seconds`` and ``audio_seconds`` added. Give `client` (an existing
    ``distributed.Client``) or `cluster` (a scheduler address, or ``"local"`` /
    ``"local:N"`` for a `LocalCluster` on this machine). The other options are those
    of `acapella.Separator` and ``acapella separate``. `progress` is called with
    each record and the running `Report` (`report`, if given, is the one filled in).

    Raises `ClusterError` (one line) when the run cannot start: no scheduler, no
    workers, workers whose acapella or model differs, another run on `out_dir`.
    """
    distributed = _distributed()
    from distributed import as_completed

    from acapella import onnx_model as models
    from acapella.outputs import Options, walk
    from acapella.stream import CHUNK_SECONDS

    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number from 0, got {retries!r}")
    if not isinstance(per_worker, int) or per_worker < 1:
        raise ValueError(f"per_worker must be a whole number from 1, got {per_worker!r}")
    options = Options(stems=tuple(stems) if not isinstance(stems, str) else stems, format=format, force=force,
                      plot=plot)
    pmap = path_map if isinstance(path_map, PathMap) else PathMap.parse(path_map)
    model_path = models.resolve(model)
    bundled = str(model) in models.bundled() and not str(model).endswith(".onnx")
    digest = file_digest(model_path)
    settings = {"threads": threads, "chunk_seconds": float(chunk_seconds or CHUNK_SECONDS),
                "per_channel": bool(per_channel), "vocal_pan": vocal_pan}
    from acapella.separator import Separator

    Separator(model=model_path, threads=1, chunk_seconds=settings["chunk_seconds"], per_channel=per_channel,
              vocal_pan=vocal_pan)  # the options are refused here, in one line, before any worker sees them
    from acapella.worker import SeparatorPlugin, plugin_problem, separate

    plugin = SeparatorPlugin(_version(), str(model) if bundled else os.fsdecode(model_path.resolve()),
                             None if bundled else model_path.read_bytes(), digest, settings, pmap)
    run_options = _run_options(options, settings)
    okey = (run_options, digest)
    out_dir = Path(out_dir)
    worker_out = pmap.to_worker(out_dir)
    run = uuid.uuid4().hex[:12]
    report = report if report is not None else Report()
    report.manifest = out_dir / MANIFEST_DIR / MANIFEST
    started = time.monotonic()
    manifest = None
    try:
        with _connected(client, cluster, connect_timeout) as c:
            address = c.scheduler.address if c.scheduler else cluster
            _wait_for_workers(c, address, workers_timeout)
            _check_workers(c, plugin, address)
            # Only now that the run can start does the output folder get its manifest and lock.
            manifest = Manifest(out_dir)
            c.register_plugin(plugin, name=PLUGIN_NAME)
            problems = {a: p for a, p in c.run(plugin_problem).items() if p}
            if problems:
                raise ClusterError(next(iter(problems.values())))
            previous_failures = c.run_on_scheduler(_set_allowed_failures, value=0)
            try:
                yield from _drive(c, separate, distributed, as_completed, manifest, report, walk(inputs), options,
                                  okey, worker_out, pmap, run, retries, skip_failed, per_worker, progress)
            finally:
                with contextlib.suppress(Exception):
                    c.run_on_scheduler(_set_allowed_failures, value=previous_failures)
    finally:
        report.seconds = time.monotonic() - started
        if manifest is not None:
            manifest.close()


def _set_allowed_failures(dask_scheduler, value: int) -> int:
    before = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = value
    return before


def _drive(c, separate_task, distributed, as_completed, manifest, report, jobs, options, okey, worker_out, pmap, run,
           retries, skip_failed, per_worker, progress) -> Iterator[dict]:
    """Keeps `per_worker` tasks per worker thread in flight, counts attempts, records and yields each input."""
    starts: dict[str, str] = {}  # task key -> the worker it started on
    c.subscribe_topic(f"acapella-{run}", lambda event: starts.__setitem__(event[1]["key"], event[1]["worker"]))
    pending: dict = {}  # future -> _Attempt
    done = as_completed(loop=c.loop)
    counter = itertools.count()
    options_key = _options_key(*okey)
    jobs = iter(jobs)
    exhausted = False
    slots = {"value": 0, "at": 0.0}

    def limit() -> int:
        if time.monotonic() - slots["at"] > 5.0:
            slots["value"] = max(1, sum(c.nthreads().values())) * per_worker
            slots["at"] = time.monotonic()
        return slots["value"]

    def submit(a: _Attempt) -> None:
        job = a.job
        worker_job = dataclasses.replace(job, source=Path(pmap.to_worker(job.source)),
                                         root=None if job.root is None else Path(pmap.to_worker(job.root)))
        fut = c.submit(separate_task, worker_job, worker_out, options, run, pure=False,
                       key=f"acapella-{run}-{a.n}-{a.attempts + a.unseen}")
        pending[fut] = a
        done.add(fut)

    def finish(a: _Attempt, record: dict) -> dict:
        for k in ("input", "folder"):
            if record.get(k):
                record[k] = pmap.to_driver(record[k])
        record["stems"] = {s: pmap.to_driver(p) for s, p in (record.get("stems") or {}).items()}
        record["input"] = os.fsdecode(a.job.source)
        record.update(size=a.size, mtime_ns=a.mtime_ns, options=okey[0], model_hash=okey[1],
                      attempts=max(1, a.attempts + (record.get("status") != "killed")),
                      time=round(time.time(), 3))
        if record["status"] == "killed":
            record["status"] = "failed"
        manifest.append(record)
        report.add(record)
        return record

    def fill() -> Iterator[dict]:
        nonlocal exhausted
        while not exhausted and len(pending) < limit():
            try:
                job = next(jobs)
            except StopIteration:
                exhausted = True
                return
            a = _Attempt(job, next(counter), *_stat(job.source))
            if job.problem:
                yield finish(a, {"status": "failed", "reason": job.problem, "stems": {}, "worker": None})
                continue
            prev = None if options.force else manifest.previous(os.fsdecode(job.source))
            if prev is not None and prev[:3] == (a.size, a.mtime_ns, options_key):
                if prev[3] == "done":
                    r = {"input": os.fsdecode(job.source), "status": "skipped",
                         "reason": "done in an earlier run (see the manifest)", "stems": {}}
                    report.add(r)
                    yield r
                    continue
                if prev[3] == "failed" and skip_failed:
                    r = {"input": os.fsdecode(job.source), "status": "skipped",
                         "reason": f"failed in an earlier run: {prev[4]}", "stems": {}}
                    report.add(r)
                    yield r
                    continue
            submit(a)

    try:
        yield from _emit(fill(), progress, report)
        while pending:
            fut = next(done)
            a = pending.pop(fut)
            if fut.status == "finished":
                record = fut.result()
                fut.release()
                yield from _emit([finish(a, record)], progress, report)
            elif fut.status in ("cancelled", "lost"):
                a.unseen += 1
                fut.release()
                submit(a)
            else:
                exc = fut.exception()
                key = fut.key
                fut.release()
                if isinstance(exc, distributed.KilledWorker):
                    if key in starts:
                        a.attempts += 1
                    else:
                        a.unseen += 1
                    if a.attempts > retries or a.unseen > 3 * (retries + 1):
                        reason = (f"its worker died {a.attempts} times while separating it "
                                  f"(last {starts.get(key, exc.last_worker.address if exc.last_worker else '?')}); "
                                  "the file may crash the decoder: check it with another tool")
                        rec = {"status": "killed", "reason": reason, "stems": {}, "worker": starts.get(key)}
                        yield from _emit([finish(a, rec)], progress, report)
                    else:
                        if key in starts:
                            report.retried += 1
                        submit(a)
                elif isinstance(exc, ClusterError):
                    raise exc
                else:
                    rec = {"status": "failed", "reason": f"{type(exc).__name__}: {_reason(exc)}", "stems": {},
                           "worker": starts.get(key)}
                    yield from _emit([finish(a, rec)], progress, report)
                starts.pop(key, None)
            yield from _emit(fill(), progress, report)
    finally:
        if pending:  # Ctrl-C, SIGTERM or an error: nothing more starts, and what runs stops between blocks
            with contextlib.suppress(Exception):
                c.cancel(list(pending), force=True)
        with contextlib.suppress(Exception):
            c.unsubscribe_topic(f"acapella-{run}")


def _emit(records, progress, report) -> Iterator[dict]:
    for r in records:
        if progress is not None:
            progress(r, report)
        yield r


def separate_library(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *, client=None, cluster=None,
                     **options) -> Report:
    """Separates a library on a Dask cluster and returns its `Report`; `iter_library` yields the records instead.

    Takes the same options as `iter_library`.

    Example::

        >>> from distributed import Client                                  # doctest: +SKIP
        >>> report = separate_library(["music/"], "stems", client=Client("tcp://10.0.0.1:8786"))  # doctest: +SKIP
        >>> print(report.done, report.failed, report.failures[:1])        # doctest: +SKIP
    """
    report = Report()
    for _ in iter_library(inputs, out_dir, client=client, cluster=cluster, report=report, **options):
        pass
    return report


# --- the command line ---------------------------------------------------------------------------


class _Progress:
    """One bar over the library (a status line every 30 s where stderr is not a terminal).

    The library is counted in a thread of its own while it is separated, so the
    bar has a total, and an ETA, as soon as the walk is done.
    """

    def __init__(self, inputs, enabled: bool):
        from tqdm import tqdm

        self.tty = sys.stderr.isatty()
        self.enabled = enabled
        self.report = None
        self.start = time.monotonic()
        self.total: int | None = None
        self._stop = threading.Event()
        self.bar = tqdm(total=None, desc="files", unit="file", file=sys.stderr, disable=not (enabled and self.tty),
                        bar_format="{desc} {n_fmt}/{total_fmt} {bar} [{elapsed}<{remaining}, {rate_fmt}] {postfix}")
        if enabled:
            threading.Thread(target=self._count, args=(list(inputs),), daemon=True).start()
            if not self.tty:
                threading.Thread(target=self._status_lines, daemon=True).start()

    def _count(self, inputs) -> None:
        from acapella.outputs import walk

        n = 0
        for _ in walk(inputs):
            if self._stop.is_set():
                return
            n += 1
        self.total = n
        self.bar.total = n
        self.bar.refresh()

    def summary(self) -> str:
        r = self.report
        if r is None:
            return "starting"
        elapsed = max(1e-9, time.monotonic() - self.start)
        finished = r.done + r.skipped + r.failed
        text = (f"{r.done} done, {r.skipped} skipped, {r.failed} failed, {r.retried} retried; "
                f"{(r.done + r.failed) / elapsed:.2f} files/s, {r.audio_seconds / 3600 / elapsed:.4f} h of audio/s")
        if self.total:
            rate = finished / elapsed
            eta = (self.total - finished) / rate if rate > 0 else float("inf")
            text = f"{finished}/{self.total} files: " + text + (f", ETA {eta / 60:.1f} min" if eta < 1e9 else "")
        return text

    def _status_lines(self) -> None:
        while not self._stop.wait(STATUS_EVERY):
            print(f"acapella: {self.summary()}", file=sys.stderr, flush=True)

    def __call__(self, record: dict, report: Report) -> None:
        self.report = report
        elapsed = max(1e-9, time.monotonic() - self.start)
        self.bar.set_postfix_str(f"{report.done} done, {report.skipped} skipped, {report.failed} failed, "
                                 f"{report.retried} retried, {report.audio_seconds / 3600 / elapsed:.3f} h audio/s",
                                 refresh=False)
        self.bar.update(1)
        if record.get("status") == "failed":
            self.bar.write(f"acapella: {record['input']}: {record.get('reason')}", file=sys.stderr)

    def close(self) -> None:
        self._stop.set()
        self.bar.close()


def add_arguments(parser) -> None:
    """The options of ``acapella separate`` that only a cluster run reads."""
    g = parser.add_argument_group("cluster (pip install 'acapella[cluster]')")
    g.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="separate on a Dask cluster: a scheduler address (tcp://HOST:8786), or local[:N] for N "
                        "worker processes on this machine")
    g.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                   help="tries again after a worker dies while separating a file (default: %(default)s)")
    g.add_argument("--skip-failed", action="store_true", help="do not retry the inputs that failed in an earlier run")
    g.add_argument("--path-map", action="append", default=[], metavar="DRIVER_PREFIX=WORKER_PREFIX",
                   help="where a path on this machine reads differently on the workers (repeatable)")


def run_cli(args) -> int:
    """``acapella separate ... --cluster ADDRESS``: exit status as for a local run."""
    from acapella.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _err as err

    if args.retries < 0:
        err(f"--retries must be a whole number from 0, got {args.retries}")
        return EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    show = not args.quiet
    progress = _Progress(args.inputs, enabled=show)
    report = Report()
    try:
        for record in iter_library(args.inputs, args.output, cluster=args.cluster, model=args.model,
                                   stems=args.stems,
                                   format=args.format, chunk_seconds=args.chunk_seconds, threads=args.threads,
                                   per_channel=args.per_channel, vocal_pan=args.vocal_pan, force=args.force,
                                   plot=getattr(args, "plot", False), retries=args.retries,
                                   skip_failed=args.skip_failed, path_map=args.path_map, progress=progress,
                                   report=report):
            if as_json:
                print(json.dumps(record, ensure_ascii=True), flush=True)
            elif not show and record.get("status") == "failed":
                err(f"{record['input']}: {record.get('reason')}")
    except (ClusterError, ValueError) as exc:
        progress.close()
        err(_reason(exc))
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        progress.close()
        err(f"interrupted; in-flight files cancelled, no partial output left behind; "
            f"{report.done} done this run, recorded in {report.manifest}")
        return 128 + exc.signum if isinstance(getattr(exc, "signum", None), int) else EXIT_INTERRUPTED
    progress.close()
    if show:
        err(f"{progress.summary()}; stems in {args.output}, records in {report.manifest}")
    if report.failed:
        err(f"{report.failed} input(s) failed")
    return EXIT_FAILED if report.failed else EXIT_OK


def add_worker_parser(sub) -> None:
    w = sub.add_parser("worker", help="serve a Dask scheduler as an acapella worker (pip install 'acapella[cluster]')")
    w.add_argument("scheduler", metavar="ADDRESS", help="the scheduler, e.g. tcp://10.0.0.1:8786")
    w.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for the network in this worker (default: all cores)")
    w.add_argument("--local-directory", default=None, metavar="DIR",
                   help="the worker's scratch folder (default: a new one in the system's temporary folder)")
    w.add_argument("--name", default=None, help="the worker's name on the scheduler")
    w.add_argument("--host", default=None, help="the address to listen on (default: the one that reaches the scheduler)")
    w.set_defaults(func=cmd_worker)


def cmd_worker(args) -> int:
    """Replaces this process with ``dask worker ADDRESS --nthreads 1`` (with its nanny), one file at a time."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("acapella: acapella worker needs Dask distributed: pip install 'acapella[cluster]'", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print(f"acapella: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    import tempfile

    local = args.local_directory or tempfile.mkdtemp(prefix="acapella-worker-")
    # The worker's HTTP server (health, metrics) listens even without a dashboard: on --host, if given.
    cmd = [sys.executable, "-m", "distributed.cli.dask_worker", args.scheduler, "--nthreads", "1",
           "--local-directory", local, "--no-dashboard", "--dashboard-address", f"{args.host or ''}:0"]
    for flag, value in (("--name", args.name), ("--host", args.host)):
        if value:
            cmd += [flag, value]
    env = dict(os.environ)
    if args.threads:
        env[WORKER_THREADS] = str(args.threads)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)
    return 0  # not reached
