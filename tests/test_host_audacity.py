"""``acapella audacity`` against a real Audacity driven over mod-script-pipe.

Audacity runs under Xvfb with a throwaway profile that enables the
mod-script-pipe module. The test skips when Audacity or Xvfb is missing, or
when an Audacity of this user already listens on the pipe (the pipe path is
fixed per uid, so the test would otherwise drive someone's real session).

One Audacity serves the whole module (about 15 s in all). The last test
hangs it on purpose and stops it, so it has to stay last in the file.
"""

from __future__ import annotations

import datetime as dt
import os
import select
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import acapella_command
from acapella.host_adapters.audacity_pipe import (
    AudacityError,
    RECONNECT_S,
    AudacityPipe,
    default_pipe_paths,
    parse_info_json,
    quote_arg,
)

MODULE_SO = Path("/usr/lib/audacity/modules/mod-script-pipe.so")
SR = 44100
SEL_START, SEL_END = 1.0, 3.0
TRACK_NAME = 'Song "Mix" ü'

pytestmark = pytest.mark.skipif(os.name != "posix", reason="mod-script-pipe uses POSIX FIFOs")




def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*acapella_command(), "audacity", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pipe_is_live() -> bool:
    to_path, _ = default_pipe_paths()
    try:
        fd = os.open(to_path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True


def write_profile(config_dir: Path, temp_dir: Path) -> None:
    """A minimal audacity.cfg with mod-script-pipe enabled.

    Audacity loads a module only when all three entries agree: enabled (1),
    its path, and the .so's mtime as local ISO time; otherwise it marks the
    module "new" and leaves it off. Rewriting the whole file also drops
    [ActiveProjects], whose leftovers after a kill would open the modal
    crash-recovery dialog on the next launch.
    """
    mtime = dt.datetime.fromtimestamp(MODULE_SO.stat().st_mtime).strftime("%Y-%m-%dT%H:%M:%S")
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "audacity.cfg").write_text(
        "[GUI]\nShowSplashScreen=0\n"
        "[Locale]\nLanguage=en\n"
        f"[Directories]\nTempDir={temp_dir}\n"
        "[Module]\nmod-script-pipe=1\n"
        f"[ModulePath]\nmod-script-pipe={MODULE_SO}\n"
        f"[ModuleDateTime]\nmod-script-pipe={mtime}\n"
    )


def stop_pid(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)


class AudacitySession:
    """Xvfb plus Audacity with a fresh profile, stoppable by pid at any point."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.temp = root / "audacity-temp"
        self.log_path = root / "audacity.log"
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.audacity: subprocess.Popen[bytes] | None = None
        self.display = ""

    def start(self) -> None:
        self.xvfb, self.display = self._start_xvfb()
        self.temp.mkdir(parents=True, exist_ok=True)
        # The first launch on a fresh profile scans plugins, loading the module
        # twice: the pipe listens briefly, then its FIFO is replaced and nobody
        # reads the new one. So let it build the profile, stop it, and use the
        # second launch.
        self._configure()
        self._launch()
        self._wait_for_profile()
        stop_pid(self.audacity)
        for _attempt in range(2):
            self._configure()
            self._launch()
            if self._wait_listening(20):
                return
            stop_pid(self.audacity)
        raise RuntimeError(f"Audacity never answered on its script pipe; log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        try:
            stop_pid(self.audacity)
        finally:
            stop_pid(self.xvfb)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        useful = [l for l in text.splitlines() if l.strip() and "Gdk-CRITICAL" not in l]
        return "\n".join(useful[-lines:])

    def _start_xvfb(self) -> tuple[subprocess.Popen[bytes], str]:
        # -displayfd lets Xvfb pick a free display and say when it is ready.
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                pass_fds=(write_fd,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(write_fd)
        try:
            deadline = time.monotonic() + 15
            data = b""
            while not data.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([read_fd], [], [], left)[0]:
                    stop_pid(proc)
                    raise RuntimeError("Xvfb did not report a display within 15 s")
                chunk = os.read(read_fd, 64)
                if not chunk:
                    stop_pid(proc)
                    raise RuntimeError("Xvfb exited before reporting a display")
                data += chunk
        finally:
            os.close(read_fd)
        return proc, ":" + data.decode().strip()

    def _configure(self) -> None:
        write_profile(self.home / ".config" / "audacity", self.temp)
        for leftover in self.temp.iterdir():
            if leftover.is_file():
                leftover.unlink()

    def _launch(self) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("XDG_", "WAYLAND_", "DBUS_"))
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            DISPLAY=self.display,
            GDK_BACKEND="x11",
        )
        with open(self.log_path, "ab") as log:
            self.audacity = subprocess.Popen(
                ["audacity"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
            )

    def _wait_for_profile(self, timeout: float = 20) -> None:
        # Audacity records the open project in [ActiveProjects] once its
        # window is up, which is after the plugin scan and module loading.
        cfg = self.home / ".config" / "audacity" / "audacity.cfg"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.audacity is not None
            if self.audacity.poll() is not None:
                return
            try:
                if "[ActiveProjects]" in cfg.read_text(errors="replace"):
                    return
            except OSError:
                pass
            time.sleep(0.1)

    def _wait_listening(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.audacity is not None
            if self.audacity.poll() is not None:
                return False
            try:
                # Short per-try deadline: a command sent while Audacity is
                # still starting can go unanswered, and the next try's sync
                # discards any late reply.
                with AudacityPipe(timeout=2):
                    return True
            except AudacityError:
                time.sleep(0.2)
        return False


@pytest.fixture(scope="module")
def audacity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AudacitySession]:
    for program in ("audacity", "Xvfb"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (Debian: apt-get install -y audacity xvfb)")
    if not MODULE_SO.exists():
        pytest.skip(f"{MODULE_SO} is missing; this Audacity build has no mod-script-pipe")
    if pipe_is_live():
        pytest.skip("an Audacity with mod-script-pipe is already running for this user")
    session = AudacitySession(tmp_path_factory.mktemp("audacity"))
    try:
        session.start()
        yield session
    finally:
        session.stop()
        # Audacity leaves its FIFOs behind when killed; remove ours unless a
        # new Audacity has taken them over meanwhile.
        if not pipe_is_live():
            for path in default_pipe_paths():
                if path.exists() and stat.S_ISFIFO(path.stat().st_mode):
                    path.unlink()


def make_mixture(path: Path) -> np.ndarray:
    """Four seconds of stereo: a gliding 'voice' over chords and noise."""
    rng = np.random.default_rng(7)
    t = np.arange(4 * SR) / SR
    f0 = 220 * 2 ** (np.sin(2 * np.pi * 0.5 * t) / 6)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.15
    chords = sum(np.sin(2 * np.pi * f * t) for f in (110, 138.6, 164.8)) * 0.08
    noise = rng.standard_normal((t.size, 2)) * 0.01
    mix = np.stack([voice + chords, 0.8 * voice + chords], axis=1) + noise
    mix = mix.astype(np.float32)
    sf.write(path, mix, SR, subtype="FLOAT")
    return mix


def export_range(pipe: AudacityPipe, track: int, start: float, end: float, path: Path) -> np.ndarray:
    pipe.command(f"Select: Start={start} End={end} Track={track} TrackCount=1 Mode=Set")
    pipe.export_selection(path, 2)
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == SR
    return audio


def clear_project(pipe: AudacityPipe) -> None:
    for index in reversed(range(len(pipe.tracks()))):
        pipe.command(f"SelectTracks: Track={index} TrackCount=1 Mode=Set")
        pipe.command("RemoveTracks:")
    assert pipe.tracks() == []


def track_signature(track: dict) -> dict:
    keys = ("name", "kind", "start", "end", "channels", "gain", "pan", "mute", "solo")
    return {key: track.get(key) for key in keys}


def test_pipe_problems_are_one_line_errors(tmp_path: Path) -> None:
    # Real FIFOs with nobody behind them, the state a crashed Audacity leaves.
    to_path, from_path = tmp_path / "to", tmp_path / "from"
    with pytest.raises(AudacityError, match=r"^no Audacity script pipe at .*/to: start Audacity"):
        AudacityPipe(to_path, from_path).connect()
    to_path.write_text("")
    from_path.write_text("")
    with pytest.raises(AudacityError, match="is not a named pipe"):
        AudacityPipe(to_path, from_path).connect()
    to_path.unlink()
    from_path.unlink()
    os.mkfifo(to_path)
    os.mkfifo(from_path)
    started = time.monotonic()
    with pytest.raises(AudacityError, match=r"^stale Audacity pipe .*/to: no Audacity is listening") as caught:
        AudacityPipe(to_path, from_path).connect()
    # It gives up once the grace for a pipe being remade is over, instead of blocking in open().
    assert time.monotonic() - started < RECONNECT_S + 5
    assert "\n" not in str(caught.value)


def test_a_pipe_remade_between_check_and_open_is_waited_out(tmp_path: Path) -> None:
    # The window Audacity leaves when a client quits: the pipe is gone at open()
    # and already back at the re-check. That is a remake to wait out, not an error.
    to_path, from_path = tmp_path / "to", tmp_path / "from"
    os.mkfifo(to_path)
    os.mkfifo(from_path)

    class RemadeOnce(AudacityPipe):
        removed = False

        def _check_fifo(self, path: Path) -> None:
            if self.removed and not path.exists():
                os.mkfifo(path)
            super()._check_fifo(path)
            if path == from_path and not self.removed:
                self.removed = True
                to_path.unlink()

    pipe = RemadeOnce(to_path, from_path)
    # Nobody listens on the remade pipe either, so once the retries run out the
    # error is the stale-pipe one, not "No such file or directory".
    with pytest.raises(AudacityError, match=r"^stale Audacity pipe .*/to: no Audacity is listening"):
        pipe.connect()
    assert pipe.removed


def test_quoting_for_the_pipe() -> None:
    assert quote_arg('a "b" \\c') == '"a \\"b\\" \\\\c"'
    with pytest.raises(AudacityError, match="line break"):
        quote_arg("a\nb")


def test_no_selection_says_select_audio_first(audacity: AudacitySession, tmp_path: Path) -> None:
    with AudacityPipe(timeout=20) as pipe:
        clear_project(pipe)
    result = run_cli("--quiet", "--timeout", "20")
    assert result.returncode == 1, result.stderr
    assert "select some audio first" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    mixture = tmp_path / "mixture.wav"
    make_mixture(mixture)
    with AudacityPipe(timeout=20) as pipe:
        pipe.import_file(mixture)
        # A cursor, not a range: Export2 "succeeds" with an empty file here.
        pipe.command("Select: Start=2 End=2 Track=0 TrackCount=1 Mode=Set")
    result = run_cli("--quiet", "--timeout", "20")
    assert result.returncode == 1, result.stderr
    assert "select some audio first" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with AudacityPipe(timeout=20) as pipe:
        assert len(pipe.tracks()) == 1


def test_separates_selection_into_new_tracks(audacity: AudacitySession, tmp_path: Path) -> None:
    with AudacityPipe(timeout=20) as pipe:
        clear_project(pipe)
        mixture_path = tmp_path / "mixture.wav"
        mixture = make_mixture(mixture_path)
        pipe.import_file(mixture_path)
        pipe.command("SelectTracks: Track=0 TrackCount=1 Mode=Set")
        pipe.command(f"SetTrack: Name={quote_arg(TRACK_NAME)}")
        original = pipe.tracks()[0]
        assert original["name"] == TRACK_NAME
        selection = export_range(pipe, 0, SEL_START, SEL_END, tmp_path / "selection.wav")
        np.testing.assert_allclose(
            selection, mixture[int(SEL_START * SR): int(SEL_END * SR)], atol=1e-6
        )
        pipe.command(f"Select: Start={SEL_START} End={SEL_END} Track=0 TrackCount=1 Mode=Set")

    result = run_cli("--timeout", "30")
    assert result.returncode == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr

    with AudacityPipe(timeout=20) as pipe:
        tracks = pipe.tracks()
        assert [t["name"] for t in tracks] == [
            TRACK_NAME,
            f"{TRACK_NAME} - vocals",
            f"{TRACK_NAME} - accompaniment",
        ]
        assert track_signature(tracks[0]) == track_signature(original)
        # The user's selection comes back: the original track only.
        assert [bool(t["selected"]) for t in tracks] == [True, False, False]
        tolerance = 2.0 / SR
        for stem_track in tracks[1:]:
            assert stem_track["kind"] == "wave"
            assert stem_track["channels"] == 2
            assert stem_track["start"] == pytest.approx(SEL_START, abs=tolerance)
            assert stem_track["end"] == pytest.approx(SEL_END, abs=tolerance)

        vocals = export_range(pipe, 1, SEL_START, SEL_END, tmp_path / "vocals-back.wav")
        accompaniment = export_range(pipe, 2, SEL_START, SEL_END, tmp_path / "acc-back.wav")
        assert vocals.shape == accompaniment.shape == selection.shape
        np.testing.assert_allclose(vocals + accompaniment, selection, atol=1e-4)
        assert np.abs(vocals).max() > 0 and np.abs(accompaniment).max() > 0

        whole = export_range(pipe, 0, 0.0, 4.0, tmp_path / "original-back.wav")
        np.testing.assert_allclose(whole, mixture, atol=1e-6)
        pipe.command("Select: Start=0.5 End=1.25 Track=0 TrackCount=1 Mode=Set")

    result = run_cli("--stems", "accompaniment", "--quiet", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    with AudacityPipe(timeout=20) as pipe:
        tracks = pipe.tracks()
        assert [t["name"] for t in tracks][3:] == [f"{TRACK_NAME} - accompaniment"]
        assert tracks[3]["start"] == pytest.approx(0.5, abs=2.0 / SR)
        assert tracks[3]["end"] == pytest.approx(1.25, abs=2.0 / SR)


def test_getinfo_reply_with_unescaped_backslashes_is_read() -> None:
    # Audacity 3.2.4's own reply for tracks named AC\DC and C:\Mix "x" plus a tab:
    # quotes escaped, backslashes and control characters not.
    body = '[ \n  { "name":"AC\\DC", "mute":0 },\n  { "name":"C:\\Mix \\"x\\"\tz", "mute":1 } ]'
    assert parse_info_json(body) == [{"name": "AC\\DC", "mute": 0}, {"name": 'C:\\Mix "x"\tz', "mute": 1}]
    assert parse_info_json('[{"name":"a\\\\b \\u00fc \\n"}]') == [{"name": "a\\b ü \n"}]
    with pytest.raises(AudacityError, match="^unexpected reply from Audacity to GetInfo .*backslash"):
        parse_info_json('[{"name":"ends in \\"}]')


def select_on(pipe: AudacityPipe, tracks: list[int], start: float, end: float) -> None:
    pipe.command(f"Select: Start={start} End={end} Track={tracks[0]} TrackCount=1 Mode=Set")
    for track in tracks[1:]:
        pipe.command(f"Select: Start={start} End={end} Track={track} TrackCount=1 Mode=Add")


def test_backslashes_in_track_names(audacity: AudacitySession, tmp_path: Path) -> None:
    mixture_path = tmp_path / "mixture.wav"
    make_mixture(mixture_path)
    with AudacityPipe(timeout=20) as pipe:
        clear_project(pipe)
        pipe.import_file(mixture_path)
        pipe.import_file(mixture_path)
        for index, name in enumerate(['C:\\Mix "x"', "AC\\DC"]):
            pipe.command(f"SelectTracks: Track={index} TrackCount=1 Mode=Set")
            pipe.command(f"SetTrack: Name={quote_arg(name)}")
        # Only the first track is selected; the other's name alone used to break GetInfo.
        select_on(pipe, [0], 1.0, 2.0)
    result = run_cli("--quiet", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    with AudacityPipe(timeout=20) as pipe:
        assert [t["name"] for t in pipe.tracks()] == [
            'C:\\Mix "x"', "AC\\DC", 'C:\\Mix "x" - vocals', 'C:\\Mix "x" - accompaniment',
        ]


def test_muted_tracks_are_reported(audacity: AudacitySession, tmp_path: Path) -> None:
    mixture_path = tmp_path / "mixture.wav"
    mixture = make_mixture(mixture_path)
    with AudacityPipe(timeout=20) as pipe:
        clear_project(pipe)
        pipe.import_file(mixture_path)
        pipe.import_file(mixture_path)
        pipe.command("SelectTracks: Track=0 TrackCount=1 Mode=Set")
        pipe.command("SetTrack: Name=Muted Mute=1")
        pipe.command("SelectTracks: Track=1 TrackCount=1 Mode=Set")
        pipe.command("SetTrack: Name=Audible Gain=-6")
        select_on(pipe, [0], 1.0, 3.0)
    result = run_cli("--quiet", "--timeout", "30")
    assert result.returncode == 1
    assert result.stderr.startswith("acapella audacity: error: the selected track(s) 'Muted' are muted"), result.stderr
    assert "unmute" in result.stderr and len(result.stderr.strip().splitlines()) == 1

    # With an audible track also selected, the muted one is left out, and said so even with --quiet.
    with AudacityPipe(timeout=20) as pipe:
        select_on(pipe, [0, 1], 1.0, 3.0)
    result = run_cli("--quiet", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "acapella audacity: warning: left out of the mix because muted: 'Muted'; unmute them to include them\n"
    with AudacityPipe(timeout=20) as pipe:
        tracks = pipe.tracks()
        assert [t["name"] for t in tracks][2:] == ["Audible - vocals", "Audible - accompaniment"]
        vocals = export_range(pipe, 2, 1.0, 3.0, tmp_path / "v.wav")
        accompaniment = export_range(pipe, 3, 1.0, 3.0, tmp_path / "a.wav")
    # The audible track alone, at its -6 dB gain.
    np.testing.assert_allclose(vocals + accompaniment, mixture[SR: 3 * SR] * 10 ** (-6 / 20), atol=1e-4)

    # Solo on another track silences the selected one in the export just as Mute does.
    with AudacityPipe(timeout=20) as pipe:
        pipe.command("SelectTracks: Track=0 TrackCount=1 Mode=Set")
        pipe.command("SetTrack: Mute=0")
        pipe.command("SelectTracks: Track=1 TrackCount=1 Mode=Set")
        pipe.command("SetTrack: Solo=1")
        select_on(pipe, [0], 1.0, 3.0)
    result = run_cli("--quiet", "--timeout", "30")
    assert result.returncode == 1
    assert "'Muted' are silenced because another track is soloed" in result.stderr, result.stderr
    assert "clear Solo on the other tracks" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with AudacityPipe(timeout=20) as pipe:
        pipe.command("SelectTracks: Track=1 TrackCount=1 Mode=Set")
        pipe.command("SetTrack: Solo=0")


def test_whole_selection_comes_back(audacity: AudacitySession, tmp_path: Path) -> None:
    mixture_path = tmp_path / "mixture.wav"
    make_mixture(mixture_path)
    with AudacityPipe(timeout=20) as pipe:
        clear_project(pipe)
        pipe.import_file(mixture_path)
        pipe.command("NewLabelTrack:")
        pipe.import_file(mixture_path)
        select_on(pipe, [0, 1], 0.5, 2.5)
        before = [bool(t["selected"]) for t in pipe.tracks()]
        assert before == [True, True, False]
    result = run_cli("--quiet", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    with AudacityPipe(timeout=20) as pipe:
        tracks = pipe.tracks()
        assert [t["kind"] for t in tracks] == ["wave", "label", "wave", "wave", "wave"]
        assert [bool(t["selected"]) for t in tracks] == [True, True, False, False, False]


def test_one_run_takes_two_undos_per_stem(audacity: AudacitySession, tmp_path: Path) -> None:
    # What host_adapters/README.md tells users: Audacity's scripting has no way
    # to merge the run's steps into one.
    mixture_path = tmp_path / "mixture.wav"
    make_mixture(mixture_path)
    with AudacityPipe(timeout=20) as pipe:
        clear_project(pipe)
        pipe.import_file(mixture_path)
        select_on(pipe, [0], 1.0, 2.0)
    result = run_cli("--quiet", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    with AudacityPipe(timeout=20) as pipe:
        assert len(pipe.tracks()) == 3
        for _ in range(3):
            pipe.command("Undo:")
        assert len(pipe.tracks()) == 2
        pipe.command("Undo:")
        assert [t["name"] for t in pipe.tracks()] == ["mixture"]


def test_missing_file_is_refused_before_import(audacity: AudacitySession, tmp_path: Path) -> None:
    missing = tmp_path / "no such file.wav"
    with AudacityPipe(timeout=20) as pipe:
        before = len(pipe.tracks())
        with pytest.raises(AudacityError, match="does not exist"):
            pipe.import_file(missing)
        # No modal dialog went up: the pipe still answers at once.
        assert len(pipe.tracks()) == before


def test_back_to_back_connections_survive_the_pipes_being_remade(audacity: AudacitySession) -> None:
    # Audacity deletes and remakes both pipes each time a client leaves; a client
    # that connects in that moment must wait it out, not report Audacity gone.
    # A pipe kept open here shows its remake as a link count of 0; comparing inode numbers
    # would not, as the file system may give the new pipe the number the old one freed.
    remade, held = 0, None
    for _ in range(100):
        with AudacityPipe(timeout=20) as pipe:
            assert pipe.command("Message: Text=ping").strip() == "ping"
            if held is not None:
                remade += os.fstat(held).st_nlink == 0
                os.close(held)
            held = os.open(pipe.to_path, os.O_RDONLY | os.O_NONBLOCK)
    os.close(held)
    assert remade > 0  # the pipes really were remade meanwhile


def test_hung_audacity_times_out_then_stale_pipe_is_reported(
    audacity: AudacitySession, tmp_path: Path
) -> None:
    # Import2 of a missing file really does open a modal dialog and never
    # answers; this is the hang every command's deadline is there for.
    with AudacityPipe(timeout=20) as pipe:
        started = time.monotonic()
        with pytest.raises(AudacityError, match="did not answer 'Import2'"):
            pipe.command(f"Import2: Filename={quote_arg(str(tmp_path / 'missing.wav'))}", timeout=2)
        # The command's own 2 s deadline ended the wait, not the connection's 20 s one.
        assert time.monotonic() - started < 15

    result = run_cli("--quiet", "--timeout", "2", timeout=60)
    assert result.returncode == 1
    assert "Audacity is not answering" in result.stderr and "close it" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    audacity.stop()
    to_path, from_path = default_pipe_paths()
    for path in (to_path, from_path):
        if not path.exists():
            # What a crashed Audacity leaves behind when it had no time to clean up.
            os.mkfifo(path, 0o600)
    result = run_cli("--quiet", timeout=60)
    assert result.returncode == 1
    assert "stale Audacity pipe" in result.stderr and str(to_path) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
