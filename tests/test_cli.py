import subprocess

import numpy as np
import pytest
import soundfile as sf

from acapella import Separator
from acapella.cli import main
from conftest import noise


def run(*args):
    """Runs the installed command, as a user would."""
    return subprocess.run(["acapella", *map(str, args)], capture_output=True, text=True, timeout=600)


def one_line_error(proc):
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert lines, "expected an error message"
    assert "Traceback" not in proc.stderr
    return lines


@pytest.fixture
def song(tmp_path, demo_stems):
    v, a = demo_stems
    path = tmp_path / "in" / "song.wav"
    path.parent.mkdir()
    sf.write(path, (v + a)[:, :88200].T, 44100, subtype="FLOAT")
    return path


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_round_trip_formats(tmp_path, demo_stems, fmt):
    v, a = demo_stems
    x = (v + a)[:, :66150].T
    src = tmp_path / f"mix.{fmt}"
    sf.write(src, x, 44100)
    info = sf.info(src)
    out = tmp_path / "out"
    proc = run("separate", src, "-o", out, "--format", fmt, "--quiet")
    assert proc.returncode == 0, proc.stderr
    for stem in ("vocals", "accompaniment"):
        got = sf.info(out / "mix" / f"{stem}.{fmt}")
        assert got.samplerate == 44100 and got.channels == 2
        if fmt in ("wav", "flac"):
            assert got.frames == info.frames
    if fmt == "wav":
        mix, _ = sf.read(src, dtype="float32")
        voc, _ = sf.read(out / "mix" / "vocals.wav", dtype="float32")
        acc, _ = sf.read(out / "mix" / "accompaniment.wav", dtype="float32")
        assert np.max(np.abs(voc + acc - mix)) < 1e-6
    assert not [p for p in out.rglob("*.part")]


@pytest.mark.parametrize("rate,channels,length", [
    (8000, 1, 8000), (16000, 2, 12345), (22050, 6, 5000), (44100, 1, 0), (44100, 2, 1), (48000, 2, 24001),
    (96000, 2, 30000),
])
def test_files_keep_rate_channels_and_length(tmp_path, rate, channels, length):
    src = tmp_path / "x.wav"
    x = noise((length, channels)) if length else np.zeros((0, channels), np.float32)
    sf.write(src, x, rate, subtype="FLOAT")
    proc = run("separate", src, "-o", tmp_path / "o", "--quiet")
    assert proc.returncode == 0, proc.stderr
    voc, sr = sf.read(tmp_path / "o" / "x" / "vocals.wav", dtype="float32", always_2d=True)
    acc, _ = sf.read(tmp_path / "o" / "x" / "accompaniment.wav", dtype="float32", always_2d=True)
    assert sr == rate and voc.shape == (length, channels) == acc.shape
    if length:
        assert np.max(np.abs(voc + acc - x)) < 1e-6


def test_folders_stems_skip_and_force(tmp_path, song, capsys):
    (song.parent / "sub").mkdir()
    sf.write(song.parent / "sub" / "other.flac", noise((20000, 2)), 44100)
    (song.parent / "notes.txt").write_text("not audio")
    out = tmp_path / "out"
    assert main(["separate", str(song.parent), "-o", str(out), "--stems", "vocals", "--quiet"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav")) == ["song/vocals.wav",
                                                                                "sub/other/vocals.wav"]
    before = (out / "song" / "vocals.wav").stat().st_mtime_ns
    assert main(["separate", str(song), "-o", str(out), "--stems", "vocals"]) == 0
    assert "use --force" in capsys.readouterr().err
    assert (out / "song" / "vocals.wav").stat().st_mtime_ns == before
    assert main(["separate", str(song), "-o", str(out), "--stems", "vocals", "--force", "--quiet"]) == 0
    assert (out / "song" / "vocals.wav").stat().st_mtime_ns != before


def test_output_inside_input_folder_never_touches_inputs(tmp_path, song):
    data = song.read_bytes()
    # OUT_DIR inside the input folder: outputs are not taken as new inputs.
    proc = run("separate", song.parent, "-o", song.parent / "stems", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = run("separate", song.parent, "-o", song.parent / "stems", "--quiet", "--force")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (song.parent / "stems").iterdir()) == ["song"]
    assert song.read_bytes() == data


def test_output_that_would_overwrite_its_input_is_refused(tmp_path):
    src = tmp_path / "vocals" / "vocals.wav"
    src.parent.mkdir()
    sf.write(src, noise((5000, 2)), 44100)
    data = src.read_bytes()
    proc = run("separate", src, "-o", tmp_path, "--force")
    assert proc.returncode == 1
    assert "overwrite an input" in one_line_error(proc)[0]
    assert src.read_bytes() == data


def test_plot(tmp_path, song):
    proc = run("separate", song, "-o", tmp_path / "o", "--plot", "--quiet")
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "o" / "song" / "spectrograms.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batch_carries_on_past_bad_files(tmp_path, song):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "fake.wav").write_bytes(b"this is not audio at all" * 100)
    good = np.concatenate([noise((44100, 2))])
    sf.write(bad / "cut.wav", good, 44100, subtype="PCM_16")
    raw = (bad / "cut.wav").read_bytes()
    (bad / "cut.wav").write_bytes(raw[:len(raw) // 3])  # header promises more than is there
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    proc = run("separate", bad / "fake.wav", tmp_path / "missing.wav", tmp_path / "empty", song, bad / "cut.wav",
               "-o", out, "--quiet")
    assert proc.returncode == 1
    lines = one_line_error(proc)
    text = "\n".join(lines)
    assert "fake.wav" in text and "missing.wav" in text and "no audio files" in text
    assert (out / "song" / "vocals.wav").exists()
    assert not (out / "fake").exists() or not any((out / "fake").iterdir())
    assert not [p for p in out.rglob("*.part")]
    # A truncated file is read as far as it goes, with a warning.
    (warned,) = [l for l in lines if "cut.wav" in l]
    assert "shorter than its header says" in warned
    assert sf.info(out / "cut" / "vocals.wav").frames == sf.info(bad / "cut.wav").frames


def test_per_channel(tmp_path, song):
    mix, rate = sf.read(song, dtype="float32")
    proc = run("separate", song, "-o", tmp_path / "each", "--per-channel", "--quiet")
    assert proc.returncode == 0, proc.stderr
    v, _ = sf.read(tmp_path / "each" / "song" / "vocals.wav", dtype="float32")
    a, _ = sf.read(tmp_path / "each" / "song" / "accompaniment.wav", dtype="float32")
    assert np.max(np.abs(v + a - mix)) < 1e-6
    # the right channel alone, as a mono song, gives the same right-channel vocals
    alone = Separator().separate(mix[:, 1], rate)["vocals"]
    np.testing.assert_allclose(v[:, 1], alone, atol=1e-5)


def test_vocal_pan(tmp_path, song):
    mix, rate = sf.read(song, dtype="float32")
    proc = run("separate", song, "-o", tmp_path / "left", "--vocal-pan", "-0.5", "--quiet")
    assert proc.returncode == 0, proc.stderr
    v, _ = sf.read(tmp_path / "left" / "song" / "vocals.wav", dtype="float32")
    want = Separator(vocal_pan=-0.5).separate(mix, rate)["vocals"]
    np.testing.assert_allclose(v, want, atol=1e-4)
    for bad in ("2", "left"):
        proc = run("separate", song, "-o", tmp_path / "bad", "--vocal-pan", bad, "--quiet")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "from -1 (hard left) to 1 (hard right)" in proc.stderr
    assert not (tmp_path / "bad").exists()


def test_format_that_cannot_hold_the_input(tmp_path):
    src = tmp_path / "odd.wav"
    sf.write(src, noise((7000, 2)), 7000)  # MP3 has no 7 kHz rate
    proc = run("separate", src, "-o", tmp_path / "out", "--format", "mp3", "--quiet")
    assert proc.returncode == 1
    line = one_line_error(proc)[0]
    assert "vocals.mp3" in line and "7000 Hz" in line and "--format" in line and ".part" not in line
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_nan_samples_refused(tmp_path):
    # A float file from a broken render: NaN would spread over whole stems through the network.
    x = noise((3 * 44100, 2)).astype(np.float32)
    x[66150:66160, 1] = np.nan
    src = tmp_path / "broken.wav"
    sf.write(src, x, 44100, subtype="FLOAT")
    out = tmp_path / "out"
    proc = run("separate", src, "-o", out, "--quiet")
    assert proc.returncode == 1
    line = one_line_error(proc)[0]
    assert "broken.wav" in line and "NaN" in line and "1.50 s" in line
    assert not (out / "broken").exists() or not any((out / "broken").iterdir())


def test_unwritable_output(tmp_path, song):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run("separate", song, "-o", blocker / "out")
    assert proc.returncode == 1
    assert "cannot write to output folder" in one_line_error(proc)[0]


def test_usage_errors(tmp_path, song):
    fresh = tmp_path / "new" / "out"
    for args in (["separate", song], ["separate", song, "-o", tmp_path, "--format", "aac"],
                 ["separate", song, "-o", tmp_path, "--stems", "drums"], ["frobnicate"],
                 ["separate", song, "-o", fresh, "--model", "nope"],
                 ["separate", song, "-o", fresh, "--threads", "0"],
                 ["separate", song, "-o", fresh, "--chunk-seconds", "inf"],
                 ["demo", tmp_path / "d.wav", "--seconds", "0"], ["demo", tmp_path / "d.wav", "--seconds", "nan"]):
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(one_line_error(proc)) == 1
    assert not (tmp_path / "new").exists() and not (tmp_path / "d.wav").exists()


def test_output_folder_may_be_the_input_folder(tmp_path, song):
    sf.write(song.parent / "other.flac", noise((20000, 2)), 44100)
    for _ in range(2):  # the second run finds the first run's stems and leaves them out
        proc = run("separate", song.parent, "-o", song.parent, "--quiet")
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.relative_to(song.parent).as_posix() for p in song.parent.rglob("*.wav")) == [
        "other/accompaniment.wav", "other/vocals.wav", "song.wav", "song/accompaniment.wav", "song/vocals.wav"]


def test_every_input_gets_its_own_output_folder(tmp_path):
    # Folders below the one named mirror into OUT; a name of dots alone is hidden in a folder search,
    # but given by name it still gets a folder of its own.
    rates = {"in/a/song.wav": 44100, "in/b/song.wav": 22050, "in/c/song-2.wav": 16000, "d/..wav": 8000}
    for name, rate in rates.items():
        (tmp_path / name).parent.mkdir(parents=True)
        sf.write(tmp_path / name, noise((rate // 2, 1)), rate, format="WAV")
    (tmp_path / "in" / "a" / "._song.wav").write_bytes(b"\x00\x05\x16\x07 a Mac's resource fork")
    out = tmp_path / "out"
    twice = tmp_path / "in" / "b" / ".." / "a" / "song.wav"  # also found in the folder: separated once
    proc = run("separate", tmp_path / "in", twice, tmp_path / "d" / "..wav", "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    folders = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("vocals.wav"))
    assert folders == ["__wav", "a/song", "b/song", "c/song-2"]
    assert [sf.info(out / f / "vocals.wav").samplerate for f in folders] == [8000, 44100, 22050, 16000]


def test_missing_stems_are_written_without_force(tmp_path, song):
    out = tmp_path / "out"
    assert run("separate", song, "-o", out, "--stems", "vocals", "--quiet").returncode == 0
    before = (out / "song" / "vocals.wav").stat().st_mtime_ns
    proc = run("separate", song, "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (out / "song" / "vocals.wav").stat().st_mtime_ns == before
    mix, _ = sf.read(song, dtype="float32")
    voc, _ = sf.read(out / "song" / "vocals.wav", dtype="float32")
    acc, _ = sf.read(out / "song" / "accompaniment.wav", dtype="float32")
    assert np.max(np.abs(voc + acc - mix)) < 1e-6


def test_damaged_header_is_an_error_not_silence(tmp_path):
    src = tmp_path / "full.flac"
    sf.write(src, noise((44100, 2)), 44100)
    (tmp_path / "head.flac").write_bytes(src.read_bytes()[:60])  # the header promises a second of audio
    proc = run("separate", tmp_path / "head.flac", "-o", tmp_path / "out")
    assert proc.returncode == 1
    assert "head.flac" in one_line_error(proc)[0]
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_version_and_models():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("acapella ")
    proc = run("models")
    assert proc.returncode == 0
    names = [l.split()[0] for l in proc.stdout.splitlines()[1:] if l and not l.startswith("SDR")]
    assert names[:1] == ["default"] and "acapellabot" in names


def test_demo_then_separate(tmp_path):
    demo = tmp_path / "demo.wav"
    assert run("demo", demo).returncode == 0
    proc = run("separate", demo, "-o", tmp_path / "stems")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "stems" / "demo" / "vocals.wav").frames == sf.info(demo).frames


def test_interrupt_leaves_no_partial_file(tmp_path, song, monkeypatch):
    from acapella import files

    calls = {"n": 0}
    real = files.AtomicWriters.write

    def boom(self, stems):
        real(self, stems)
        calls["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(files.AtomicWriters, "write", boom)
    out = tmp_path / "out"
    code = main(["separate", str(song), "-o", str(out), "--quiet", "--chunk-seconds", "0.5"])
    assert code == 130 and calls["n"] == 1
    assert not [p for p in out.rglob("*") if p.is_file()]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_termination_leaves_no_partial_file(tmp_path, signame):
    import signal
    import time

    src = tmp_path / "long.wav"
    sf.write(src, noise((120 * 44100, 2)), 44100)
    out = tmp_path / "out"
    proc = subprocess.Popen(["acapella", "separate", str(src), "-o", str(out), "--chunk-seconds", "2", "--threads", "1"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.rglob("*.part")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the separation ended before a stem was being written"
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + getattr(signal, signame), err
    assert "Traceback" not in err and "interrupted" in err
    assert not [p for p in out.rglob("*") if p.is_file()]
    assert not (out / "long").exists()


def test_file_names_that_are_not_utf8(tmp_path):
    import os

    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    name = os.path.join(folder, b"caf\xe9 song.wav")  # Latin-1, as on an old disk or in a zip
    try:
        sf.write(name, noise((8000, 2)), 44100)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    proc = run("separate", os.fsdecode(folder), "-o", tmp_path / "out", "--quiet")
    assert proc.returncode == 0, proc.stderr
    stems = os.path.join(os.fsencode(tmp_path / "out"), b"caf\xe9 song")
    assert sorted(os.listdir(stems)) == [b"acapella.json", b"accompaniment.wav", b"vocals.wav"]
    assert sf.info(os.path.join(stems, b"vocals.wav")).frames == 8000
