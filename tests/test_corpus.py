"""The corpus engine and its renderer: MIDI parts, fluidsynth, drum kits, voice widening, screening,
the resumable build and loading its cache into the training pools.

Everything here is made by the tests (tiny MIDI files, tones, noise, a hand-written drum kit, a
Debian package built on the spot); rendering uses the real fluidsynth and TimGM6mb, and skips
where they are not installed.
"""
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from acapella.model import corpus, render
from acapella.model.corpora import CachedClip, Pool, Pools, add_corpus
from acapella.model.mixer import Mixer

SR = 44100
TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None or not TIMGM.is_file(),
                                      reason="fluidsynth and timgm6mb-soundfont are not installed "
                                             "(apt-get install fluidsynth timgm6mb-soundfont)")


@pytest.fixture
def timgm_only(monkeypatch):
    """Rendering with TimGM6mb only and no Hydrogen kits: small and the same on every machine."""
    monkeypatch.setattr(render, "FONTS", {"TimGM6mb": (str(TIMGM), "timgm6mb-soundfont")})
    monkeypatch.setattr(render, "DRUMKITS_DIR", Path("/nonexistent"))


def write_midi(path: Path, tracks: dict[str, list[tuple[float, int, float]]], channels: dict[str, int] | None = None,
               bpm: float = 120.0) -> Path:
    """A type-1 MIDI file: per track name, notes (start beat, pitch, length in beats)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    mid.tracks.append(meta)
    for name, notes in tracks.items():
        ch = (channels or {}).get(name, 0)
        events = []
        for start, pitch, length in notes:
            events.append((int(start * 480), 1, mido.Message("note_on", channel=ch, note=pitch, velocity=100)))
            events.append((int((start + length) * 480), 0, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        now = 0
        for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def tone(freq: float, seconds: float, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(amp / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 6)).astype(np.float32)
    return np.repeat(x[None], channels, axis=0)


def peak_hz(x: np.ndarray) -> float:
    x = x.mean(axis=0)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec)) * SR / len(x)


# ----------------------------------------------------------------------------------------------
# MIDI parts

def test_midi_tracks_follow_the_tempo_map(tmp_path):
    path = write_midi(tmp_path / "a.mid", {"lead": [(0, 60, 1), (4, 62, 1)]}, bpm=60)
    tracks, beats, _ = render.midi_tracks(path)
    (name, channel, events), = tracks
    ons = [t for t, m in events if m.type == "note_on"]
    assert name == "lead" and channel == 0
    np.testing.assert_allclose(ons, [0.0, 4.0])  # 60 bpm: one beat a second
    np.testing.assert_allclose(beats[:3], [0.0, 1.0, 2.0])


def test_derived_bass_plays_the_lowest_note_of_each_beat_in_the_bass_register(tmp_path):
    chords = [(0, 60, 2), (0, 64, 2), (0, 67, 2), (2, 57, 2), (2, 60, 2), (2, 64, 2)]  # C major, then A minor
    path = write_midi(tmp_path / "c.mid", {"PIANO": chords})
    tracks, beats, _ = render.midi_tracks(path)
    bass = render.notes_of(render.derived_bass(tracks[0][2], beats))
    assert [n[2] % 12 for n in bass] == [0, 0, 9, 9]  # C, C, A, A: the roots
    assert all(28 <= n[2] < 52 for n in bass)
    assert all(n[1] <= b1 for n, b1 in zip(bass, beats[1:]))  # each note ends within its beat


def test_retimed_moves_notes_but_never_drums():
    events = [(1.0, mido.Message("note_on", note=60, velocity=90)), (2.0, mido.Message("note_off", note=60))]
    moved = render.retimed(events, tempo=2.0, transpose=3, drums=False)
    assert [(t, m.note) for t, m in moved] == [(0.5, 63), (1.0, 63)]
    assert [m.note for _, m in render.retimed(events, 2.0, 3, drums=True)] == [60, 60]


# ----------------------------------------------------------------------------------------------
# Rendering

@needs_fluidsynth
def test_each_part_is_rendered_on_its_own_and_in_its_own_time():
    early = render.Part("other", 0, [(0.0, mido.Message("note_on", note=60, velocity=100)),
                                     (0.5, mido.Message("note_off", note=60))], "piano")
    late = render.Part("bass", 33, [(2.0, mido.Message("note_on", note=40, velocity=100)),
                                    (2.5, mido.Message("note_off", note=40))], "bass")
    a, b = render.render_fluidsynth([early, late], str(TIMGM))
    assert a.shape == b.shape and a.shape[0] == 2 and a.dtype == np.float32
    second = SR

    def energy(x, lo, hi):
        return float(np.square(x[:, int(lo * SR):int(hi * SR)]).sum())

    # Each part sounds where its notes are, and nothing of the other part leaks in.
    assert energy(a, 0, 1) > 1e-3 and energy(a, 1.5, 3) < 1e-6 * energy(a, 0, 1)
    assert energy(b, 2, 3) > 1e-3 and energy(b, 0, 1.9) < 1e-6 * energy(b, 2, 3)
    assert a.shape[1] >= 2.5 * second


@needs_fluidsynth
def test_a_rendered_backing_keeps_its_stems_apart(timgm_only):
    rng = np.random.default_rng(0)
    drums = render.Part("drums", None, [(t * 0.5, mido.Message("note_on", note=36 if t % 2 == 0 else 38, velocity=100))
                                        for t in range(8)], "drums")
    bass = render.Part("bass", 33, [(0.0, mido.Message("note_on", note=40, velocity=100)),
                                    (3.0, mido.Message("note_off", note=40))], "bass")
    chords = render.Part("other", 0, [(0.0, mido.Message("note_on", note=64, velocity=100)),
                                      (3.0, mido.Message("note_off", note=64))], "piano")
    info = {}
    stems = render.render_backing([drums, bass, chords], rng, tempo=1.0, transpose=0, info=info)
    assert set(stems) == {"drums", "bass", "other"}
    lengths = {x.shape for x in stems.values()}
    assert len(lengths) == 1  # sample-aligned: their sum is the accompaniment
    for name, x in stems.items():
        assert np.abs(x).max() > 1e-3, name
    # The bass stem holds the low E (82 Hz), the other stem the E two octaves up (330 Hz).
    assert peak_hz(stems["bass"][:, :2 * SR]) < 200 and peak_hz(stems["other"][:, :2 * SR]) > 200
    assert info["font"] == "TimGM6mb" and len(info["parts"]) == 3


def write_kit(folder: Path) -> Path:
    folder.mkdir(parents=True)
    click = np.zeros((2, 2000), np.float32)
    click[:, 0] = 1.0
    sf.write(folder / "kick.wav", (click * 0.8).T, SR)
    sf.write(folder / "snare_soft.wav", (click * 0.2).T, SR)
    sf.write(folder / "snare_hard.wav", (click * 0.6).T, SR)
    sf.write(folder / "hat.wav", (click * 0.1).T, SR)
    (folder / "drumkit.xml").write_text("""<drumkit_info><name>Test kit</name><license>CC0</license><instrumentList>
 <instrument><id>0</id><name>Kick</name><volume>1</volume><gain>1</gain><pan_L>1</pan_L><pan_R>1</pan_R>
  <layer><filename>kick.wav</filename><min>0</min><max>1</max><gain>1</gain></layer></instrument>
 <instrument><id>1</id><name>Snare</name><volume>1</volume><gain>1</gain><pan_L>1</pan_L><pan_R>0.5</pan_R>
  <layer><filename>snare_soft.wav</filename><min>0</min><max>0.5</max><gain>1</gain></layer>
  <layer><filename>snare_hard.wav</filename><min>0.5</min><max>1</max><gain>1</gain></layer></instrument>
 <instrument><id>2</id><name>Closed HH</name><volume>1</volume><gain>1</gain><pan_L>1</pan_L><pan_R>1</pan_R>
  <layer><filename>hat.wav</filename><min>0</min><max>1</max><gain>1</gain></layer></instrument>
</instrumentList></drumkit_info>""")
    return folder


def test_a_hydrogen_kit_plays_gm_drum_notes_with_its_velocity_layers(tmp_path):
    kit = render.DrumKit(write_kit(tmp_path / "kit"))
    assert kit.playable and kit.name == "Test kit"
    events = [(0.0, mido.Message("note_on", channel=9, note=36, velocity=127)),
              (0.5, mido.Message("note_on", channel=9, note=38, velocity=30)),
              (1.0, mido.Message("note_on", channel=9, note=38, velocity=127)),
              (1.5, mido.Message("note_on", channel=9, note=42, velocity=127)),
              (1.7, mido.Message("note_on", channel=9, note=99, velocity=127))]  # no such GM drum: silent
    out = kit.play(events, 2 * SR, np.random.default_rng(0))
    hits = np.flatnonzero(np.abs(out[0]) > 1e-6)
    np.testing.assert_array_equal(hits, [0, SR // 2, SR, int(1.5 * SR)])
    soft, hard = out[0, SR // 2], out[0, SR]
    assert hard / soft > 2.5  # the hard layer, not the soft one turned up a little
    assert out[1, SR] == pytest.approx(0.5 * out[0, SR])  # the kit's pan


def test_kits_without_kick_snare_and_hat_are_not_played(tmp_path):
    folder = tmp_path / "hands"
    folder.mkdir()
    sf.write(folder / "clap.wav", np.zeros((100, 2), np.float32), SR)
    (folder / "drumkit.xml").write_text("<drumkit_info><name>Hands</name><instrumentList><instrument><name>Hand Clap"
                                        "</name><layer><filename>clap.wav</filename></layer></instrument>"
                                        "</instrumentList></drumkit_info>")
    assert not render.DrumKit(folder).playable


# ----------------------------------------------------------------------------------------------
# Voices

def test_widening_moves_the_pitch_and_tempo_it_records():
    x = tone(220.0, 1.5)
    for seed in range(2):
        info = {}
        y = corpus.widen(x, np.random.default_rng(seed), limited=False, info=info)
        assert y.shape[1] == pytest.approx(x.shape[1] / info["tempo"], rel=0.02)
        semis = 12 * np.log2(peak_hz(y[:, SR // 4:-SR // 4]) / 220.0)
        assert semis == pytest.approx(info["pitch"], abs=0.4)


def test_band_limited_voices_are_only_moved_up():
    for seed in range(4):
        info = {}
        corpus.widen(tone(220.0, 0.2), np.random.default_rng(seed), limited=True, info=info)
        assert info["pitch"] >= 0 and info["formant"] >= 0


# ----------------------------------------------------------------------------------------------
# Game music

def test_short_files_are_dropped_as_sound_effects_and_corrupt_ones_reported(tmp_path):
    sf.write(tmp_path / "jingle.ogg", tone(440, 5.0, 2).T, SR)
    (tmp_path / "broken.ogg").write_bytes(b"OggS" + os.urandom(2000))
    _, _, rec = corpus.run_item("game", "game", "jingle", str(tmp_path / "items" / "jingle"),
                                (str(tmp_path / "jingle.ogg"), 1))
    assert rec["status"] == "dropped" and "sound effect" in rec["reason"]
    _, _, rec = corpus.run_item("game", "game", "broken", str(tmp_path / "items" / "broken"),
                                (str(tmp_path / "broken.ogg"), 1))
    assert rec["status"] == "failed" and rec["reason"]
    assert json.loads((tmp_path / "items" / "broken" / "item.json").read_text())["status"] == "failed"


def plucked(freq: float, seconds: float, rng) -> np.ndarray:
    """A Karplus-Strong string: noise through a damped delay loop."""
    period, n = int(SR / freq), int(seconds * SR)
    buf, out = rng.uniform(-1, 1, period), np.empty(n)
    for i in range(0, n, period):
        out[i:i + period] = buf[:n - i]
        buf = 0.498 * (buf + np.roll(buf, -1))
    return out


def instrumental(seconds: float, seed: int = 0) -> np.ndarray:
    """Plucked bass strings and noise hits: music without a voice in it."""
    rng = np.random.default_rng(seed)
    notes = {f: plucked(f, 0.8, rng) for f in (55.0, 82.5, 110.0)}
    out = np.zeros((2, int(seconds * SR)), np.float32)
    hit = np.arange(int(0.3 * SR)) / SR
    for start in np.arange(0, seconds - 1, 0.25):
        s = int(start * SR)
        out[:, s:s + hit.size] += (0.3 * rng.standard_normal((2, hit.size)) * np.exp(-30 * hit)).astype(np.float32)
        if start % 0.5 == 0:
            note = notes[float(rng.choice(list(notes)))]
            out[:, s:s + note.size] += 0.2 * note.astype(np.float32)
    return out


def test_game_tracks_are_screened_normalised_and_cut_into_passages(tmp_path):
    x = instrumental(32.0) * 0.05  # quiet: the engine brings it to the corpus level
    sf.write(tmp_path / "track.ogg", x.T, SR)
    _, _, rec = corpus.run_item("game", "game", "track", str(tmp_path / "item"), (str(tmp_path / "track.ogg"), 1))
    assert rec["status"] == "kept", rec
    stored = np.load(tmp_path / "item" / "accompaniment.npy")
    assert stored.dtype == np.int16 and stored.shape[0] == 2
    # Brought to the corpus level, or as near as its peaks allow.
    level, peak = render.active_rms_db(stored / 32767.0), np.abs(stored).max() / 32767.0
    assert level == pytest.approx(render.TARGET_RMS_DB, abs=0.5) or (
        peak == pytest.approx(render.PEAK, abs=1e-3) and level < render.TARGET_RMS_DB)
    assert level > render.active_rms_db(x) + 10
    assert rec["seconds"] + rec["dropped_seconds"] == pytest.approx(32.0, abs=0.1)
    assert all(b - a <= corpus.SEGMENT_S * SR for a, b in rec["segments"])
    assert rec["segments"][-1][1] == stored.shape[1]


def shared_musdb() -> Path:
    from acapella.model.paths import default_data_root

    base = default_data_root() / "musdb7-train"
    songs = sorted(p for p in base.iterdir() if (p / "vocals.flac").is_file()) if base.is_dir() else []
    if not songs:
        pytest.skip(f"no MUSDB stems under {base}")
    return songs[0]


def test_screening_cuts_out_the_passage_where_a_voice_sings(tmp_path):
    song = shared_musdb()
    v, sr = sf.read(song / "vocals.flac", dtype="float32", always_2d=True)
    a, _ = sf.read(song / "accompaniment.flac", dtype="float32", always_2d=True)
    assert sr == SR
    band = instrumental(30.0)
    sung = (v + a).T[:, :5 * SR]
    track = np.concatenate([band[:, :15 * SR], sung, band[:, 15 * SR:]], axis=1)
    sf.write(tmp_path / "track.flac", track.T, SR)
    _, _, rec = corpus.run_item("game", "game", "track", str(tmp_path / "item"), (str(tmp_path / "track.flac"), 1))
    assert rec["status"] == "kept" and rec["voice_windows_dropped"] >= 1
    assert 4.0 <= rec["dropped_seconds"] <= 15.0
    assert rec["seconds"] >= 20.0


def test_tracks_that_are_mostly_voice_are_dropped(tmp_path):
    song = shared_musdb()
    v, _ = sf.read(song / "vocals.flac", dtype="float32", always_2d=True)
    a, _ = sf.read(song / "accompaniment.flac", dtype="float32", always_2d=True)
    track = np.tile((v + a).T, (1, 5))  # 34 s of singing
    sf.write(tmp_path / "choir.flac", track.T, SR)
    _, _, rec = corpus.run_item("game", "game", "choir", str(tmp_path / "item"), (str(tmp_path / "choir.flac"), 1))
    assert rec["status"] == "dropped" and "voice" in rec["reason"]
    assert not (tmp_path / "item" / "accompaniment.npy").exists()


def make_deb(folder: Path, name: str) -> Path:
    """A Debian package holding a soundtrack: an Ogg in a music folder, a sound effect outside it,
    and a .pk3 (zip) of Ogg files."""
    root = folder / "pkgroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: 1.2-3\nArchitecture: all\n"
                                             "Maintainer: t <t@example.org>\nDescription: test soundtrack\n")
    music = root / "usr" / "share" / "games" / "test" / "music"
    music.mkdir(parents=True)
    sf.write(music / "theme.ogg", tone(110, 1.0, 2).T, SR)
    sounds = root / "usr" / "share" / "games" / "test" / "sounds"
    sounds.mkdir(parents=True)
    sf.write(sounds / "boom.ogg", tone(220, 0.5, 2).T, SR)
    sf.write(folder / "inner.ogg", tone(330, 1.0, 2).T, SR)
    with zipfile.ZipFile(music / "data.pk3", "w") as z:
        z.write(folder / "inner.ogg", "sound/cdtracks/track02.ogg")
    downloads = folder / "downloads"
    downloads.mkdir()
    deb = downloads / f"{name}_1.2-3_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True)
    return downloads


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")


@needs_dpkg
def test_game_packages_are_unpacked_with_their_pk3_archives_and_a_missing_one_reported(tmp_path):
    downloads = make_deb(tmp_path, "testgame-data")
    lines = []
    tracks, versions = corpus.game_tracks(["testgame-data", "no-such-package-xyz"], downloads, tmp_path / "x",
                                          lines.append)
    names = sorted(f.name for _, f in tracks)
    assert names == ["theme.ogg", "track02.ogg"]  # the sound effect outside music/ is not a candidate
    assert versions == {"testgame-data": "1.2-3"}
    assert len(lines) == 1 and "no-such-package-xyz" in lines[0] and "skipped" in lines[0]


# ----------------------------------------------------------------------------------------------
# The build

def tiny_data(root: Path) -> Path:
    groove = root / "midi" / "groove"
    beat = [(b / 2, 36 if b % 4 == 0 else 42 if b % 2 else 38, 0.25) for b in range(40)]
    write_midi(groove / "d1" / "1_rock_120_beat_4-4.mid", {"drums": beat}, channels={"drums": 9})
    write_midi(groove / "d1" / "2_funk_100_beat_4-4.mid", {"drums": beat[:32]}, channels={"drums": 9}, bpm=100)
    (groove / "info.csv").write_text(
        "drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,audio_filename,duration,split\n"
        "d1,d1,d1/1,rock,120,beat,4-4,d1/1_rock_120_beat_4-4.mid,x.wav,20,train\n"
        "d1,d1,d1/2,funk,100,beat,4-4,d1/2_funk_100_beat_4-4.mid,x.wav,19,train\n")
    chords = [(b, p, 1) for b in range(0, 24) for p in ((48, 52, 55) if b % 8 < 4 else (45, 48, 52))]
    for song in ("001", "002"):
        write_midi(root / "midi" / "pop909" / song / f"{song}.mid",
                   {"MELODY": [(b, 72 + b % 5, 1) for b in range(24)], "BRIDGE": [(b, 67, 2) for b in range(0, 24, 2)],
                    "PIANO": chords})
    (root / "midi" / "pop909" / "003").mkdir(parents=True)
    (root / "midi" / "pop909" / "003" / "003.mid").write_bytes(b"MThd not really a midi file")
    voice = root / "pjs-vocals" / "pjs001"
    voice.mkdir(parents=True)
    sf.write(voice / "vocals.wav", tone(200.0, 3.0).T, SR)
    return root


def build(out: Path, data: Path, hours: str, *extra: str) -> int:
    return corpus.main(["build", "--out", str(out), "--data", str(data), "--hours", hours, "--jobs", "1",
                        "--variants", "1", *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A corpus built twice from tiny data: first 3.6 s of Groove (one file is enough), then, after an
    item was left half-built, with larger amounts: the second run must continue and extend it."""
    if shutil.which("fluidsynth") is None or not TIMGM.is_file():
        pytest.skip("fluidsynth and timgm6mb-soundfont are not installed (apt-get install fluidsynth timgm6mb-soundfont)")
    mp = pytest.MonkeyPatch()
    mp.setattr(render, "FONTS", {"TimGM6mb": (str(TIMGM), "timgm6mb-soundfont")})
    mp.setattr(render, "DRUMKITS_DIR", Path("/nonexistent"))
    tmp = tmp_path_factory.mktemp("built")
    data = tiny_data(tmp / "data")
    out = tmp / "corpus"
    assert build(out, data, "game=0,music21=0,groove=0.001,pop909=0") == 0
    first = {p.parent.name: p.stat().st_mtime_ns for p in (out / "items" / "groove").glob("*/item.json")}
    (out / "items" / "pjs" / "pjs001-v1" / "item.json").unlink()  # stopped after its stems, before its marker
    import contextlib
    import io

    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        assert build(out, data, "game=0,music21=0,groove=1,pop909=1") == 0
    mp.undo()
    return {"out": out, "first": first, "err": err.getvalue(), "out_text": std.getvalue()}


def test_build_renders_stems_that_sum_to_the_accompaniment_and_reports_what_failed(built):
    out = built["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    sources = manifest["sources"]
    assert sources["groove"]["kept"] == 2 and sources["pop909"]["kept"] == 2 and sources["pop909"]["failed"] == 1
    assert sources["pjs"]["kept"] == 1 and sources["pjs"]["hours"] > 0
    # The corrupt file is reported in one line, with its name, and the summary names every source.
    bad = [line for line in built["err"].splitlines() if "003" in line]
    assert len(bad) == 1 and "skipped" in bad[0]
    for source in ("groove", "pop909", "pjs"):
        assert any(line.startswith(source) for line in built["out_text"].splitlines())
    assert manifest["versions"]["mido"] and manifest["versions"]["debian"]["timgm6mb-soundfont"]
    assert manifest["seed"] == 1234 and "TimGM6mb" in manifest["soundfonts"]

    for item in (out / "items" / "pop909").iterdir():
        rec = json.loads((item / "item.json").read_text())
        if rec["status"] != "kept":
            continue
        stems = {s: np.load(item / f"{s}.npy") for s in rec["stems"]}
        assert {"bass", "other"} <= set(stems)  # the derived bass line is its own stem
        assert len({x.shape for x in stems.values()}) == 1 and all(x.dtype == np.int16 for x in stems.values())
        assert rec["segments"][-1][1] == next(iter(stems.values())).shape[1]


def test_a_rerun_continues_and_a_larger_amount_extends_the_cache(built, capsys):
    out = built["out"]
    assert len(built["first"]) == 1
    again = {p.parent.name: p.stat().st_mtime_ns for p in (out / "items" / "groove").glob("*/item.json")}
    assert len(again) == 2 and all(again[k] == v for k, v in built["first"].items())  # the done one is kept
    assert (out / "items" / "pjs" / "pjs001-v1" / "item.json").is_file()  # the half-built one is built again
    corpus.main(["summary", str(out)])
    assert "groove" in capsys.readouterr().out


def test_the_built_cache_loads_into_the_pools_memory_mapped(built):
    out = built["out"]
    pools = Pools(Pool(), Pool(), Pool(), Pool(), Pool())
    hours = add_corpus(pools, out, 44100, 2)
    assert set(hours) == {"groove", "pop909", "pjs-wide"}
    assert set(pools.vocals.groups) == {"pjs-wide"}
    assert set(pools.accompaniment.groups) == {"groove", "pop909"}
    assert set(pools.bass.groups) == {"pop909"} and "groove" in pools.drums.groups
    clip = next(c for c, g in zip(pools.accompaniment.clips, pools.accompaniment.groups) if g == "pop909")
    assert isinstance(clip, CachedClip) and all(isinstance(a, np.memmap) for a in clip.arrays)
    # A backing's accompaniment is the sum of its stems, sample for sample.
    piece = clip[:, 1000:5000]
    stems = sum(a[:, clip.start + 1000:clip.start + 5000].astype(np.float32) for a in clip.arrays) / 32767.0
    np.testing.assert_array_equal(piece, stems)
    assert piece.dtype == np.float32 and piece.shape == (2, 4000)
    # The mixer draws from them like any other clip.
    mixer = Mixer(pools, 2 ** 15, 2, seed=0)
    v, a, limited = mixer.batch(3)
    assert v.shape == a.shape == (3, 2, 2 ** 15) and np.abs(a).max() > 0 and np.isfinite(v).all()
    # A mono model hears the channels' mean.
    mono = Pools(Pool(), Pool(), Pool(), Pool(), Pool())
    add_corpus(mono, out, 44100, 1)
    assert mono.accompaniment.clips[0].shape[0] == 1


def test_a_cached_clip_reads_like_a_float_array_and_sums_its_stems():
    drums = np.arange(2 * 1000, dtype=np.int16).reshape(2, 1000)
    bass = -drums // 2
    clip = CachedClip([drums, bass], 100, 600, channels=2)
    assert clip.shape == (2, 500) and clip.dtype == np.float32
    np.testing.assert_array_equal(clip[:, 10:20], (drums[:, 110:120] + bass[:, 110:120]) / np.float32(32767.0))
    out = np.zeros((2, 800), np.float32)
    out[:, 10:510] = clip  # as the mixer pads a clip shorter than an example
    np.testing.assert_allclose(out[:, 10:510], (drums[:, 100:600] + bass[:, 100:600]) / 32767.0, rtol=1e-6)
    assert CachedClip([drums], 0, 1000, channels=1)[:, :].shape == (1, 1000)  # a mono model hears the mean


def test_an_empty_folder_is_refused_as_a_corpus(tmp_path):
    pools = Pools(Pool(), Pool(), Pool(), Pool(), Pool())
    with pytest.raises(ValueError, match="no corpus items"):
        add_corpus(pools, tmp_path, 44100, 2)


def test_bad_options_are_refused_in_one_line(tmp_path, capsys):
    for args in (["--hours", "games=1"], ["--hours", "game=lots"], ["--variants", "-1"], ["--max-gb", "0"]):
        with pytest.raises(SystemExit):
            corpus.main(["build", "--out", str(tmp_path / "c"), "--data", str(tmp_path), *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("usage:") is False and "error:" in err[-1]
    assert not (tmp_path / "c").exists()


def test_training_draws_from_the_built_cache(built, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from acapella.model import train

    run = tmp_path / "run"
    data = built["out"].parent / "data"  # pjs-vocals/ only: the accompaniments all come from the cache
    assert train.main(["--model", "default", "--steps", "1", "--batch", "2", "--frames", "64",
                       "--corpora", "musdb=0,mir1k=0", "--data", str(data), "--corpus", str(built["out"]),
                       "--cache", str(tmp_path / "cache"), "--out", str(run)]) == 0
    info = json.loads((run / "train.json").read_text())
    assert set(info["corpus_hours"]) == {"groove", "pop909", "pjs-wide"}
    assert info["augmentation"]["paired"] == 0.0 and info["corpus"] == str(built["out"])
    assert "corpus " in (run / "train.log").read_text()
