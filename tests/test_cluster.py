"""A library on a real Dask cluster: a scheduler and two workers with nannies, started here on 127.0.0.1."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

distributed = pytest.importorskip("distributed", reason="the cluster tests need Dask distributed: "
                                                        "pip install 'acapella[cluster]'")
psutil = pytest.importorskip("psutil", reason="the cluster tests need psutil (which distributed brings)")

from acapella import cluster, demo  # noqa: E402

STARTUP = 90  # seconds for processes to come up on a busy machine; a hang fails, a slow start does not
KILL_ON = "killer"  # the name part that makes these tests' workers kill themselves (see cluster.KILL_HOOK)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _acapella(*args):
    return [sys.executable, "-m", "acapella.cli", *args]


class Processes:
    """Processes this test module starts; stopped by their pids, and checked to be gone, descendants and all."""

    def __init__(self, folder: Path):
        self.folder, self.procs, self.seen = folder, [], set()

    def start(self, name: str, cmd, env=None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        # From a folder of their own: a `python -m` child puts its working folder first on sys.path, and a
        # checkout's acapella.egg-info there would hide a PYTHONPATH given in `env`.
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                             cwd=self.folder)
        p.name = name
        self.procs.append(p)
        return p

    def note_descendants(self) -> None:
        for p in self.procs:
            try:
                self.seen.update(c.pid for c in psutil.Process(p.pid).children(recursive=True))
            except psutil.NoSuchProcess:
                pass
            self.seen.add(p.pid)

    def stop(self) -> None:
        self.note_descendants()
        # Workers first, while their scheduler can still take their goodbyes; then the schedulers.
        for group in ([p for p in self.procs if not p.name.startswith("scheduler")],
                      [p for p in self.procs if p.name.startswith("scheduler")]):
            for p in group:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in group:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.alive():
            time.sleep(0.2)
        left = self.alive()
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left running: {left}"

    def listening(self) -> set[str]:
        """The addresses that these processes and their descendants listen on."""
        self.note_descendants()
        found = set()
        for pid in self.seen:
            try:
                conns = psutil.Process(pid).net_connections(kind="inet")
            except psutil.NoSuchProcess:
                continue
            found.update(c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN)
        return found

    def alive(self) -> list[int]:
        out = []
        for pid in self.seen:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    out.append(pid)
            except psutil.NoSuchProcess:
                pass
        return out


def _start_cluster(procs: Processes, folder: Path, workers: int, env=None, plain: bool = False) -> str:
    """A scheduler and `workers` `acapella worker` processes; or, `plain`, `dask worker`s without nannies."""
    port = _port()
    address = f"tcp://127.0.0.1:{port}"
    procs.start(f"scheduler-{port}", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                      "--port", str(port), "--no-dashboard", "--dashboard-address", "127.0.0.1:0"])
    for i in range(workers):
        local = str(folder / f"worker-{port}-{i}")
        if plain:
            cmd = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                   "--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--local-directory",
                   local]
        else:
            cmd = _acapella("worker", address, "--threads", "1", "--host", "127.0.0.1", "--local-directory", local)
        procs.start(f"worker-{port}-{i}", cmd, env)
    with distributed.Client(address, timeout=STARTUP) as c:
        c.wait_for_workers(workers, timeout=STARTUP)
    procs.note_descendants()
    return address


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    procs = Processes(tmp_path_factory.mktemp("processes"))
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def scheduler(processes, tmp_path_factory):
    """A scheduler and two `acapella worker` processes (each a nanny and its worker) on free ports."""
    return _start_cluster(processes, tmp_path_factory.mktemp("workers"), 2, env={cluster.KILL_HOOK: KILL_ON})


@pytest.fixture()
def client(scheduler):
    with distributed.Client(scheduler, timeout=STARTUP) as c:
        c.wait_for_workers(2, timeout=STARTUP)  # workers killed by an earlier test are back
        yield c


def _song(path: Path, seconds: float, rate: int = 44100, seed: int = 0, mono: bool = False) -> None:
    v, a = demo.song(seconds, rate, seed)
    x = (v + a).T
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.mean(axis=1) if mono else x, rate)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Nested folders: two files named alike, one mono, one at 48 kHz, one corrupt."""
    root = tmp_path_factory.mktemp("library")
    _song(root / "rock" / "song.wav", 2.0, seed=0)
    _song(root / "jazz" / "song.wav", 2.0, seed=3)
    _song(root / "jazz" / "live" / "mono.flac", 1.5, seed=5, mono=True)
    _song(root / "hi" / "rate48.wav", 1.5, rate=48000, seed=7)
    (root / "bad").mkdir()
    (root / "bad" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + os.urandom(300))
    return root


def _records(stdout: str) -> dict:
    recs = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {Path(r["input"]).resolve(): r for r in recs}


def _manifest(out: Path) -> list[dict]:
    path = out / cluster.MANIFEST_DIR / cluster.MANIFEST
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*.part")]


# --- a normal run -------------------------------------------------------------------------------


def test_normal_run_matches_a_local_run(library, scheduler, client, processes, tmp_path):
    from acapella import Separator
    from acapella.outputs import Options, run_job, walk

    out = tmp_path / "stems"
    r = subprocess.run(_acapella("separate", str(library), "-o", str(out), "--cluster", scheduler, "--json"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    recs = _records(r.stdout)
    assert len(recs) == 5
    bad = recs[(library / "bad" / "corrupt.wav").resolve()]
    assert bad["status"] == "failed" and "corrupt.wav" in bad["reason"] and "\n" not in bad["reason"]
    assert any("corrupt.wav" in line for line in r.stderr.splitlines())

    local = tmp_path / "local"
    sep = Separator(threads=1)
    for job in walk([library]):
        mine = run_job(job, local, sep, Options())
        theirs = recs[job.source.resolve()]
        assert theirs["status"] == mine["status"]
        if mine["status"] != "done":
            continue
        assert theirs["attempts"] == 1 and theirs["worker"].startswith("tcp://127.0.0.1:")
        # The same rule names both runs' folders.
        assert Path(theirs["folder"]).relative_to(out) == Path(mine["folder"]).relative_to(local)
        x, rate = sf.read(job.source, dtype="float32", always_2d=True)
        stems = {}
        for name, path in theirs["stems"].items():
            y, yrate = sf.read(path, dtype="float32", always_2d=True)
            assert yrate == rate and y.shape == x.shape, path
            ref, _ = sf.read(mine["stems"][name], dtype="float32", always_2d=True)
            np.testing.assert_allclose(y, ref, atol=1e-6, rtol=0)
            stems[name] = y
        np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], x, atol=1e-6, rtol=0)
        assert np.abs(stems["vocals"]).max() > 1e-3  # a voice was found, not silence
    assert len({recs[p]["folder"] for p in recs if recs[p]["status"] == "done"}) == 4  # song.wav twice, apart

    loads = client.run(lambda: __import__("acapella.worker").worker._LOADS["count"])
    assert sorted(loads.values()) == [1, 1], loads
    assert {rec["status"] for rec in _manifest(out)} == {"done", "failed"} and len(_manifest(out)) == 5
    assert not _temporaries(out)
    assert processes.listening() == {"127.0.0.1"}


# --- workers that die ---------------------------------------------------------------------------


def test_worker_killed_mid_file(tmp_path, client):
    lib = tmp_path / "lib"
    _song(lib / "long" / "long.wav", 14.0, seed=2)
    for i in range(3):
        _song(lib / f"short{i}.wav", 1.0, seed=10 + i)
    frames = {p.stem: sf.info(p).frames for p in lib.rglob("*.wav")}
    out = tmp_path / "stems"
    incomplete, stop = [], threading.Event()

    def watch():  # every stem under its final name must be whole, at any moment
        while not stop.is_set():
            for stem in list(out.rglob("vocals.wav")) + list(out.rglob("accompaniment.wav")):
                try:
                    n = sf.info(stem).frames
                except Exception as exc:
                    incomplete.append((stem, repr(exc)))
                    continue
                if n != frames[stem.parent.name]:
                    incomplete.append((stem, n))
            time.sleep(0.01)

    records = []
    run = threading.Thread(target=lambda: records.extend(cluster.iter_library([lib], out, client=client)))
    watcher = threading.Thread(target=watch)
    watcher.start()
    run.start()
    pids = client.run(os.getpid)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and run.is_alive():
        for addr, pid in pids.items():
            try:
                names = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            except OSError:
                continue
            if any("/long/long/." in n and n.endswith(".part") for n in names):
                os.kill(pid, signal.SIGKILL)
                killed = addr
                break
        time.sleep(0.005)
    run.join(180)
    stop.set()
    watcher.join()
    assert killed, "the long file was never seen being written"
    assert not run.is_alive()
    assert not incomplete, incomplete
    by = {Path(r["input"]).stem: r for r in records}
    assert {r["status"] for r in records} == {"done"} and len(records) == 4
    assert by["long"]["attempts"] == 2 and by["long"]["worker"] != killed
    assert all(by[f"short{i}"]["attempts"] == 1 for i in range(3))
    assert not _temporaries(out)
    (long_record,) = [r for r in _manifest(out) if r["input"].endswith("long.wav")]
    assert long_record["attempts"] == 2 and long_record["status"] == "done"


def test_a_file_that_kills_every_worker_takes_no_other_down(tmp_path, client):
    lib = tmp_path / "lib"
    _song(lib / "bad" / f"{KILL_ON}.wav", 1.0, seed=4)
    for i in range(4):
        _song(lib / "ok" / f"innocent{i}.wav", 0.8, seed=20 + i)
    report = cluster.separate_library([lib], tmp_path / "stems", client=client, retries=1)
    assert report.done == 4 and report.failed == 1 and report.retried == 1
    ((path, reason),) = report.failures
    assert path.endswith(f"{KILL_ON}.wav") and "died 2 times" in reason
    recs = {Path(r["input"]).stem: r for r in _manifest(tmp_path / "stems")}
    assert recs[KILL_ON]["attempts"] == 2 and recs[KILL_ON]["status"] == "failed"
    assert all(recs[f"innocent{i}"]["status"] == "done" and recs[f"innocent{i}"]["attempts"] == 1 for i in range(4))


def test_a_custom_model_travels_from_the_driver(tmp_path, client):
    from acapella import Separator, onnx_model

    model = tmp_path / "driver-only" / "mine.onnx"
    model.parent.mkdir()
    model.write_bytes(onnx_model.resolve("acapellabot").read_bytes())
    _song(tmp_path / "lib" / "one.wav", 1.0, seed=50)
    # The workers cannot see the driver's folder of the model: it must travel as bytes.
    records = list(cluster.iter_library([tmp_path / "lib"], tmp_path / "stems", client=client, model=model,
                                        path_map=[f"{model.parent}={tmp_path / 'not-mounted'}"]))
    assert [r["status"] for r in records] == ["done"]
    digest = cluster.file_digest(model)
    copies = client.run(lambda dask_worker: sorted(os.listdir(Path(dask_worker.local_directory) / "acapella-models")))
    assert f"{digest}.onnx" in {name for names in copies.values() for name in names}
    x, _ = sf.read(tmp_path / "lib" / "one.wav", dtype="float32", always_2d=True)
    v, _ = sf.read(records[0]["stems"]["vocals"], dtype="float32", always_2d=True)
    ref = Separator(model=model, threads=1).separate(x.T, 44100)["vocals"].T
    np.testing.assert_allclose(v, ref, atol=1e-6, rtol=0)  # the custom model's stems, not the default's


# --- resuming -----------------------------------------------------------------------------------


def test_resume_after_sigterm(tmp_path, scheduler, client):
    lib = tmp_path / "lib"
    for i in range(8):
        _song(lib / f"d{i % 2}" / f"s{i}.wav", 1.2, seed=30 + i)
    out = tmp_path / "stems"
    cmd = _acapella("separate", str(lib), "-o", str(out), "--cluster", scheduler, "--json")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _manifest(out) and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted" in stderr
    first = {r["input"] for r in _manifest(out) if r["status"] == "done"}
    assert 1 <= len(first) < 8, "the run ended before SIGTERM came: nothing left to resume"
    # A file a worker was on when the driver let go is dropped between blocks, or finished whole.
    deadline = time.monotonic() + 60
    while _temporaries(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _temporaries(out)

    # The reruns go through the Python API, the same driver as the command's, without a process to start.
    def rerun(**options):
        return {Path(r["input"]).resolve(): r for r in cluster.iter_library([lib], out, client=client, **options)}

    second = rerun()
    assert len(second) == 8 and not any(r["status"] == "failed" for r in second.values())
    for path, rec in second.items():
        if str(path) in {str(Path(f).resolve()) for f in first}:
            assert rec["status"] == "skipped"  # never separated twice
        else:
            assert rec["status"] in ("done", "skipped")  # skipped: finished on its worker after the SIGTERM
    assert all((out / f"d{i % 2}" / f"s{i}" / "vocals.wav").exists() for i in range(8))

    _song(lib / "d0" / "new.wav", 1.0, seed=99)
    third = rerun()
    assert [p.name for p, rec in third.items() if rec["status"] == "done"] == ["new.wav"]

    assert {rec["status"] for rec in rerun(format="flac").values()} == {"done"}
    assert len(list(out.rglob("vocals.flac"))) == 9


def test_a_second_driver_on_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "stems"
    first = cluster.Manifest(out)
    try:
        with pytest.raises(cluster.ClusterError, match="being written by another acapella run"):
            cluster.Manifest(out)
    finally:
        first.close()
    cluster.Manifest(out).close()  # free again once the first has let go


# --- usage errors -------------------------------------------------------------------------------


def test_unreachable_scheduler_is_one_line(tmp_path, library):
    r = subprocess.run(_acapella("separate", str(library), "-o", str(tmp_path / "o"), "--cluster",
                                 f"tcp://127.0.0.1:{_port()}"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert "cannot reach the Dask scheduler" in line and "127.0.0.1" in line


def test_a_worker_of_another_version_is_refused(tmp_path, processes, library):
    fake = tmp_path / "site"
    (fake / "acapella-9.9.9.dist-info").mkdir(parents=True)
    (fake / "acapella-9.9.9.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: acapella\n"
                                                                 "Version: 9.9.9\n")
    env = {"PYTHONPATH": os.pathsep.join([str(fake)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    address = _start_cluster(processes, tmp_path, 1, env=env, plain=True)  # a plain `dask worker` serves too
    r = subprocess.run(_acapella("separate", str(library), "-o", str(tmp_path / "o"), "--cluster", address),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert "acapella 9.9.9" in line and "tcp://127.0.0.1:" in line
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_bad_path_map_is_refused():
    with pytest.raises(ValueError, match="DRIVER_PREFIX=WORKER_PREFIX"):
        cluster.PathMap.parse(["/mnt/music"])
    m = cluster.PathMap.parse(["/mnt/music=/data/music"])
    assert m.to_worker("/mnt/music/a/b.wav") == "/data/music/a/b.wav"
    assert m.to_worker("/mnt/musicals/b.wav") == "/mnt/musicals/b.wav"
    assert m.to_driver("/data/music/a/b.wav") == "/mnt/music/a/b.wav"


# --- a cluster of this machine ------------------------------------------------------------------


def test_local_cluster(tmp_path, processes):
    lib = tmp_path / "lib"
    _song(lib / "a.wav", 1.0, seed=40)
    _song(lib / "b" / "a.wav", 1.0, seed=41)
    out = tmp_path / "stems"
    r = subprocess.run(_acapella("separate", str(lib), "-o", str(out), "--cluster", "local:2", "--json"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    recs = _records(r.stdout)
    assert {rec["status"] for rec in recs.values()} == {"done"} and len(recs) == 2
    for rec in recs.values():
        x, _ = sf.read(rec["input"], dtype="float32", always_2d=True)
        v, _ = sf.read(rec["stems"]["vocals"], dtype="float32", always_2d=True)
        a, _ = sf.read(rec["stems"]["accompaniment"], dtype="float32", always_2d=True)
        np.testing.assert_allclose(v + a, x, atol=1e-6, rtol=0)


# --- the benchmarks' option checks --------------------------------------------------------------


@pytest.mark.parametrize("script, args, words", [
    ("cluster_memory.py", ["--small", "5", "--files", "3"], ["--small", "--files"]),
    ("cluster_memory.py", ["--workers", "0"], ["--workers"]),
    ("cluster.py", ["--workers", "1,x"], ["--workers", "1,x"]),
    ("cluster.py", ["--songs", "0"], ["--songs"]),
])
def test_benchmarks_refuse_bad_options_in_one_line(script, args, words):
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / script
    r = subprocess.run([sys.executable, str(bench), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert all(w in line for w in words), line
