"""Output naming, the sidecar record, --json, and writing that never publishes a bad file."""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path, PurePath

import numpy as np
import pytest
import soundfile as sf

from acapella import files, outputs
from conftest import acapella_command, noise


def run(*args, **kw):
    return subprocess.run([*acapella_command(), *map(str, args)], capture_output=True, text=True, timeout=600, **kw)


def error_lines(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    return [l for l in proc.stderr.splitlines() if l.strip()]


def records(proc):
    return [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]


def write(path, x, rate=44100, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, rate, **kw)
    return path


# --- the naming rule ------------------------------------------------------------


def test_output_folder_depends_only_on_the_input(tmp_path):
    for name in ("album/cd1/track.flac", "album/song.wav", "loose.mp3"):
        write(tmp_path / name, noise((100, 1)), format=name.rsplit(".")[-1].upper())
    alone = list(outputs.walk([tmp_path / "album"]))
    mixed = list(outputs.walk([tmp_path / "loose.mp3", tmp_path / "album", tmp_path / "album" / "song.wav"]))
    out = Path("OUT")
    assert [outputs.output_folder(j, out).as_posix() for j in alone] == ["OUT/cd1/track", "OUT/song"]
    # Other inputs of the batch change nothing; a file reached twice gives one job.
    assert [outputs.output_folder(j, out).as_posix() for j in mixed] == ["OUT/loose", "OUT/cd1/track", "OUT/song"]
    problems = list(outputs.walk([tmp_path / "missing.wav"]))
    assert problems[0].problem == "no such file or folder"
    assert outputs.run_job(problems[0], out, None)["status"] == "failed"


def test_name_collision_across_runs_never_passes_one_song_for_another(tmp_path):
    a = write(tmp_path / "a" / "song.wav", noise((30000, 2), seed=1), subtype="FLOAT")
    b = write(tmp_path / "b" / "song.wav", noise((30000, 2), seed=2), subtype="FLOAT")
    c = write(tmp_path / "c" / "song.wav", noise((30000, 2), seed=3), subtype="FLOAT")
    out = tmp_path / "out"
    first = run("separate", a, "-o", out, "--json", "--quiet")
    assert first.returncode == 0, first.stderr
    a_vocals = (out / "song" / "vocals.wav").read_bytes()
    record = json.loads((out / "song" / "acapella.json").read_text())
    assert record["source"] == str(a.resolve()) and record["size"] == a.stat().st_size
    assert record["mtime_ns"] == a.stat().st_mtime_ns and record["model"] == "default"
    assert record["options"] == {"per_channel": False, "vocal_pan": "auto"}

    second = run("separate", b, "-o", out, "--json", "--quiet")
    assert second.returncode == 0, second.stderr
    (rec,) = records(second)
    assert rec["status"] == "done" and rec["folder"] != str(out / "song")
    assert "holds stems of" in second.stderr and str(a.resolve()) in second.stderr
    assert len(error_lines(second)) == 1
    got, _ = sf.read(rec["stems"]["vocals"], dtype="float32")
    acc, _ = sf.read(rec["stems"]["accompaniment"], dtype="float32")
    np.testing.assert_allclose(got + acc, sf.read(b, dtype="float32")[0], atol=1e-6)
    assert (out / "song" / "vocals.wav").read_bytes() == a_vocals

    # The same input again lands in the same place, and is skipped there.
    again = run("separate", b, "-o", out, "--json")
    assert again.returncode == 0 and records(again)[0]["status"] == "skipped"
    assert records(again)[0]["folder"] == rec["folder"]
    # A changed file is not the file the stems were made from.
    write(a, noise((30000, 2), seed=4), subtype="FLOAT")
    os.utime(a, ns=(1, 1))
    changed = run("separate", a, "-o", out, "--json", "--quiet")
    assert records(changed)[0]["status"] == "done" and records(changed)[0]["folder"] != str(out / "song")
    # A third song of the same name whose second choice is taken too: refused in one line, nothing overwritten.
    st = c.stat()
    c_record = {"source": str(c.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "model": "default",
                "options": record["options"]}
    taken = outputs.distinct_folder(out / "song", c_record)
    taken.mkdir()
    (taken / "acapella.json").write_text(json.dumps({**record, "stems": {}}))
    third = run("separate", c, "-o", out, "--json", "--quiet")
    assert third.returncode == 1
    (line, summary) = error_lines(third)
    assert "hold stems of other sources" in line and "--force" in line
    assert records(third)[0]["status"] == "failed"
    assert (out / "song" / "vocals.wav").read_bytes() == a_vocals


def test_folder_without_a_record_is_not_taken_for_this_input(tmp_path):
    song = write(tmp_path / "in" / "song.wav", noise((20000, 2)), subtype="FLOAT")
    old = write(tmp_path / "out" / "song" / "vocals.wav", noise((500, 2), seed=9), subtype="FLOAT")
    data = old.read_bytes()
    proc = run("separate", song, "-o", tmp_path / "out", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert records(proc)[0]["folder"] != str(tmp_path / "out" / "song")
    assert old.read_bytes() == data


def test_json_records_one_per_input(tmp_path):
    good = write(tmp_path / "good.wav", noise((20000, 2)), subtype="FLOAT")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio" * 50)
    out = tmp_path / "out"
    proc = run("separate", good, bad, tmp_path / "missing.flac", "-o", out, "--json", "--stems", "vocals")
    assert proc.returncode == 1
    recs = {Path(r["input"]).name: r for r in records(proc)}
    assert set(recs) == {"good.wav", "bad.wav", "missing.flac"}
    assert recs["good.wav"]["status"] == "done" and recs["good.wav"]["reason"] is None
    assert recs["good.wav"]["stems"] == {"vocals": str(out / "good" / "vocals.wav")}
    assert sf.info(recs["good.wav"]["stems"]["vocals"]).frames == 20000
    assert recs["bad.wav"]["status"] == "failed" and "bad.wav" in recs["bad.wav"]["reason"]
    assert recs["missing.flac"]["status"] == "failed" and recs["missing.flac"]["stems"] == {}
    again = run("separate", good, "-o", out, "--json", "--stems", "vocals")
    (rec,) = records(again)
    assert rec["status"] == "skipped" and rec["stems"] == recs["good.wav"]["stems"]


# --- one-line messages ----------------------------------------------------------


def test_names_with_newlines_stay_on_one_line(tmp_path):
    bad = tmp_path / "two\nlines.wav"
    bad.write_bytes(b"not audio" * 50)
    proc = run("separate", bad, "-o", tmp_path / "out")
    assert proc.returncode == 1
    lines = error_lines(proc)
    assert len(lines) == 2 and "two\\nlines.wav" in lines[0]


def test_stem_path_that_is_a_folder_is_reported_as_the_stem_path(tmp_path):
    song = write(tmp_path / "song.wav", noise((20000, 2)), subtype="FLOAT")
    out = tmp_path / "out"
    assert run("separate", song, "-o", out, "--stems", "accompaniment", "--quiet").returncode == 0
    (out / "song" / "vocals.wav").mkdir()
    for extra in ([], ["--force"]):
        proc = run("separate", song, "-o", out, "--quiet", *extra)
        assert proc.returncode == 1
        line = error_lines(proc)[0]
        assert str(out / "song" / "vocals.wav") in line and "is a folder" in line and ".part" not in line


def test_stem_that_clips_in_its_format_is_warned_once(tmp_path):
    x = noise((44100, 2), scale=0.3)
    x[1000] = [0.99, -0.99]  # the input itself is in range; its stems may not be
    song = write(tmp_path / "loud.wav", np.clip(x, -0.99, 0.99), subtype="FLOAT")
    flac = run("separate", song, "-o", tmp_path / "f", "--format", "flac", "--json", "--quiet")
    wav = run("separate", song, "-o", tmp_path / "w", "--format", "wav", "--json", "--quiet")
    acc, _ = sf.read(tmp_path / "w" / "loud" / "accompaniment.wav", dtype="float32")
    voc, _ = sf.read(tmp_path / "w" / "loud" / "vocals.wav", dtype="float32")
    clipping = [s for s, y in (("vocals", voc), ("accompaniment", acc)) if np.abs(y).max() > 1]
    assert clipping, "the test signal should give a stem above full scale"
    assert records(wav)[0]["warnings"] == []
    warned = [l for l in error_lines(flac) if "clips in flac" in l]
    assert len(warned) == len(clipping) and all(f"the {s} peaks at" in "".join(warned) for s in clipping)


# --- truncated inputs -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mp3", "flac", "wav"])
def test_truncated_file_gives_only_decoded_samples(tmp_path, fmt):
    x = noise((3 * 44100, 2), scale=0.2)
    full = write(tmp_path / f"full.{fmt}", x, format=fmt.upper())
    cut = tmp_path / f"cut.{fmt}"
    data = full.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with files.Reader(full) as r:
        whole = np.concatenate(list(r.blocks(44100)), axis=1)
    with pytest.warns(UserWarning, match="shorter than its header says") as caught:
        with files.Reader(cut) as r:
            header = r.frames
            got = np.concatenate(list(r.blocks(44100)), axis=1)
    assert len(caught) == 1
    assert 0.3 * x.shape[0] < got.shape[1] < 0.6 * x.shape[0]
    assert header == (got.shape[1] if fmt == "wav" else x.shape[0])  # libsndfile counts a WAV's real frames
    # What comes out is what the decoder gave: the start of the whole file, nothing else.
    n = got.shape[1] - 2048
    np.testing.assert_allclose(got[:, :n], whole[:, :n], atol=1e-4)
    assert np.abs(got).max() <= np.abs(whole).max() + 1e-3
    out = tmp_path / "out"
    outs = [run("separate", cut, "-o", out / str(i), "--json", "--quiet") for i in range(2)]
    for proc in outs:
        assert proc.returncode == 0, proc.stderr
        (warned,) = [l for l in error_lines(proc) if "shorter than its header says" in l]
        assert f"cut.{fmt}" in warned
    stems = [sf.read(out / str(i) / "cut" / "vocals.wav", dtype="float32")[0] for i in range(2)]
    assert stems[0].shape[0] == got.shape[1]
    np.testing.assert_array_equal(stems[0], stems[1])  # the same on every run
    acc = sf.read(out / "0" / "cut" / "accompaniment.wav", dtype="float32")[0]
    np.testing.assert_allclose(stems[0] + acc, got.T, atol=1e-5)


def test_pedalboard_fallback_drops_the_padding_of_a_cut_file(tmp_path, monkeypatch):
    x = noise((3 * 44100, 2), scale=0.2)
    full = write(tmp_path / "full.mp3", x, format="MP3")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[:full.stat().st_size // 2])
    real = sf.SoundFile

    def refuse(path, *a, **kw):  # as libsndfile does with MP3s it cannot parse
        raise sf.LibsndfileError(0, "File does not exist or is not a regular file")

    monkeypatch.setattr(sf, "SoundFile", refuse)
    with pytest.warns(UserWarning, match="shorter than its header says"):
        with files.Reader(cut) as r:
            assert r._pb is not None
            got = np.concatenate(list(r.blocks(44100)), axis=1)
    monkeypatch.setattr(sf, "SoundFile", real)
    assert 0.3 * x.shape[0] < got.shape[1] < 0.6 * x.shape[0]
    assert np.any(got[:, -10:] != 0)  # ends on decoded audio, not on the padding
    # A song that fades into digital silence keeps its silence.
    fade = x * np.linspace(1, 0, x.shape[0])[:, None] ** 8
    fade[-44100:] = 0
    quiet = write(tmp_path / "fade.mp3", fade, format="MP3")
    monkeypatch.setattr(sf, "SoundFile", refuse)
    with files.Reader(quiet) as r:
        frames = r.frames
        assert sum(b.shape[1] for b in r.blocks(10000)) == frames


# --- writing: full disks, crashed encoders, killed runs -------------------------


def _tmpfs_command(size: str, target: Path, args: list) -> list[str]:
    inner = " ".join(f"'{a}'" for a in map(str, [*acapella_command(), *args]))
    return ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs '{target}' && exec {inner}"]


@pytest.fixture
def tmpfs_works(tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1) to mount a small tmpfs in a private namespace")
    p = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{probe}'"],
                       capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {p.stderr.strip()}")


@pytest.mark.parametrize("fmt,size", [("flac", "4m"), ("wav", "2m")])
def test_full_disk_publishes_nothing_and_the_batch_goes_on(tmp_path, tmpfs_works, fmt, size):
    # 10 s of loud noise: its FLAC stems are larger than the typical size the free-space check
    # expects, so the FLAC run fills the disk while writing; the WAV run is refused before it.
    big = write(tmp_path / "big.wav", noise((10 * 44100, 2), scale=0.3), subtype="FLOAT")
    small = write(tmp_path / "small.wav", noise((4410, 2)), subtype="FLOAT")
    out = tmp_path / "out"
    out.mkdir()
    cmd = _tmpfs_command(size, out, ["separate", big, small, "-o", out, "--format", fmt, "--json", "--quiet",
                                     "--vocal-pan", "0"])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 2 and "big.wav" in lines[0] and "cannot write" in lines[0]
    recs = {Path(r["input"]).name: r for r in records(proc)}
    assert recs["big.wav"]["status"] == "failed" and recs["small.wav"]["status"] == "done"
    assert "MB free" in recs["big.wav"]["reason"]


def test_write_error_in_the_encoder_fails_one_input_not_the_run(tmp_path):
    big = write(tmp_path / "big.wav", noise((20 * 44100, 2), scale=0.3), subtype="FLOAT")
    small = write(tmp_path / "small.wav", noise((2000, 2)), subtype="FLOAT")
    out = tmp_path / "out"

    def limit():  # files may grow to 100 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # Python ignores SIGXFSZ: writes fail

    for fmt in ("ogg", "wav"):
        proc = run("separate", big, small, "-o", out / fmt, "--format", fmt, "--json", "--quiet", preexec_fn=limit)
        assert proc.returncode == 1, proc.stderr
        recs = {Path(r["input"]).name: r for r in records(proc)}
        assert recs["big.wav"]["status"] == "failed" and recs["small.wav"]["status"] == "done"
        assert f"{fmt}/big/vocals.{fmt}" in recs["big.wav"]["reason"]
        assert not (out / fmt / "big").exists()
        assert sf.info(recs["small.wav"]["stems"]["vocals"]).frames == 2000


def test_encoder_that_crashes_fails_one_input_not_the_run(tmp_path):
    import time

    big = write(tmp_path / "big.wav", noise((120 * 44100, 2)), subtype="FLOAT")
    small = write(tmp_path / "small.wav", noise((2000, 2)), subtype="FLOAT")
    out = tmp_path / "out"
    proc = subprocess.Popen([*acapella_command(), "separate", str(big), str(small), "-o", str(out), "--json",
                             "--quiet", "--chunk-seconds", "2", "--threads", "1", "--vocal-pan", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def encoders():
        found = []
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and b"encoder.py" in Path(f"/proc/{pid}/cmdline").read_bytes() \
                        and int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == proc.pid:
                    found.append(int(pid))
            except OSError:
                pass
        return found

    deadline = time.monotonic() + 300
    while not (list(out.rglob("*.part")) and encoders()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the separation ended before the encoder ran"
    time.sleep(0.5)
    for pid in encoders():
        os.kill(pid, signal.SIGSEGV)  # as libsndfile's crash on a full disk does
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    recs = {Path(r["input"]).name: r for r in map(json.loads, stdout.splitlines())}
    assert recs["big.wav"]["status"] == "failed" and "encoder stopped (signal 11" in recs["big.wav"]["reason"]
    assert recs["small.wav"]["status"] == "done" and "Traceback" not in stderr
    assert not (out / "big").exists()


def test_verification_catches_a_file_that_does_not_read_back(tmp_path, monkeypatch):
    # The encoder checks what it wrote; a stem one frame short of what was sent is refused.
    w = files.AtomicWriters({"vocals": tmp_path / "vocals.wav"}, 44100, 2, "wav")
    with pytest.raises(OSError, match="holds 100 frames, not the 101 written"):
        with w:
            w.write({"vocals": noise((2, 100))})
            w.written["vocals"] += 1
    assert not list(tmp_path.iterdir())


def test_stale_temporaries_of_dead_runs_are_swept(tmp_path):
    song = write(tmp_path / "song.wav", noise((8000, 2)), subtype="FLOAT")
    folder = tmp_path / "out" / "song"
    folder.mkdir(parents=True)
    code = ("import sys, time; from acapella.files import Temporary; t = Temporary(sys.argv[1]); "
            "print(t.path, flush=True); time.sleep(600)")
    holders = [subprocess.Popen([sys.executable, "-c", code, str(folder / name)], stdout=subprocess.PIPE, text=True)
               for name in ("vocals.wav", "accompaniment.wav")]
    try:
        dead, live = [Path(p.stdout.readline().strip()) for p in holders]
        holders[0].send_signal(signal.SIGKILL)  # as a power cut would leave it
        holders[0].wait()
        assert dead.exists() and live.exists()
        other = folder / "unrelated.part"
        other.write_text("not ours")
        proc = run("separate", song, "-o", tmp_path / "out", "--quiet", "--stems", "vocals")
        assert proc.returncode == 0, proc.stderr
        assert not dead.exists() and live.exists() and other.exists()
    finally:
        for p in holders:
            p.kill()
            p.wait()
    assert files.sweep_temporaries(folder) == [live]


def test_on_a_terminal_the_run_ends_by_saying_where_the_stems_went(tmp_path):
    import pty

    songs = [write(tmp_path / "in" / name, noise((8000, 2)), subtype="FLOAT") for name in ("a.wav", "b.wav")]
    out = tmp_path / "out"
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([*acapella_command(), "separate", str(tmp_path / "in"), "-o", str(out), "--quiet"],
                              stdout=slave, stderr=subprocess.PIPE, text=True, timeout=600)
        os.close(slave)
        said = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            said += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0, proc.stderr
    lines = said.decode().splitlines()
    assert lines == [f"{songs[0]} -> {out / 'a'}{os.sep}", f"{songs[1]} -> {out / 'b'}{os.sep}"]
    # Not on a pipe: scripts read --json instead.
    assert run("separate", tmp_path / "in", "-o", out, "--quiet").stdout == ""


def test_stems_of_earlier_runs_are_not_taken_for_inputs(tmp_path):
    music = tmp_path / "music"
    song = write(music / "song.wav", noise((8000, 2)), subtype="FLOAT")
    write(music / "vocals.wav", noise((8000, 2), seed=5), subtype="FLOAT")  # a song that happens to be named so
    write(music / "old" / "vocals.flac", noise((800, 2)), format="FLAC")  # written by a version without records
    write(music / "old" / "accompaniment.flac", noise((800, 2)), format="FLAC")
    assert run("separate", music, "-o", music, "--quiet").returncode == 0
    jobs = [j.relative.as_posix() for j in outputs.walk([music])]
    assert jobs == ["song.wav", "vocals.wav"]
    assert outputs.is_output(music / "song" / "vocals.wav") and not outputs.is_output(song)
