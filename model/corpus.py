"""The corpus engine: builds a training cache of accompaniments and widened vocals.

    python -m acapella.model.corpus build --out DIR [--hours game=2,pop909=1] [--variants 2]
    python -m acapella.model.corpus summary DIR

Sources (every one is optional; one that is missing is reported in one line and skipped):

- ``game``: instrumental game soundtracks from Debian packages (``apt-get download``, ``dpkg-deb -x``;
  ``.pk3`` files are zip archives of Ogg), screened with the shipped model's vocal-energy estimate
  (passages where a voice is heard are cut out, tracks that are mostly voice are dropped), sound
  effects (short files) dropped, loudness normalised.
- ``groove``, ``pop909``, ``music21``: MIDI backings rendered part by part with fluidsynth (or, for
  drums, a Hydrogen drum kit played by `DrumKit`), each part through its own pedalboard chain, and
  kept on disk as ``drums``/``bass``/``other`` stems whose sum is the accompaniment, sample for sample.
- ``musdb``, ``pjs``, ``mir1k``, ``eif``: real voices widened with pitch, formant and tempo changes and
  the EQ, compression and reverb of a mix (validation songs and singers left out); ``eif``'s own
  clips are stored too, as the loader of the stems folders does not know them.

Each item is a folder ``DIR/items/SOURCE/ID/`` holding int16 ``.npy`` stems at 44.1 kHz (so training
memory-maps them) and an ``item.json`` written last, atomically: it marks the item done, kept or
dropped (and why), so a rerun continues where the last one stopped, and a rerun with larger
``--hours`` extends the cache. ``manifest.json`` records the options, seeds, tool and package versions
and the hours per source.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 44100
CACHE_FORMAT = 1  # bump when the layout of an item changes
FULL_SCALE = 32767.0

GAME_PACKAGES = [
    "wesnoth-1.16-music", "warzone2100-music", "ufoai-music", "nexuiz-music", "singularity-music",
    "drascula-music", "planetblupi-music-ogg", "hyperrogue-music", "asc-music", "supertux-data",
    "hedgewars-data", "flare-game", "extremetuxracer-data", "lincity-ng-data",
]
AUDIO_EXTENSIONS = {".ogg", ".oga", ".opus", ".flac", ".wav", ".mp3"}
MIDI_SOURCES = ("groove", "pop909", "music21")
VOCAL_SOURCES = ("musdb", "pjs", "mir1k", "eif")
ACCOMPANIMENT_SOURCES = ("game",) + MIDI_SOURCES
STEM_PARTS = ("drums", "bass", "other")

# Hours of accompaniment kept per source when --hours does not say; with --variants 2 this
# fills about 9 GB.
DEFAULT_HOURS = {"game": 7.0, "groove": 0.5, "pop909": 1.2, "music21": 0.5}

FONTS = {
    "FluidR3_GM": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
    "MuseScore_General": ("/usr/share/sounds/sf3/MuseScore_General_Full.sf3", "musescore-general-soundfont"),
    "TimGM6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
}
DRUMKITS_DIR = Path("/usr/share/hydrogen/data/drumkits")

# Screening: a window whose vocal estimate holds more than this share of the energy is taken to
# hold a voice. On MUSDB previews the default model's estimate sits at -11 dB or above on every
# mixture and at -20 dB or below on 95% of the accompaniments alone.
VOICE_DB = -16.0
SCREEN_WINDOW_S = 5.0
MIN_MUSIC_S = 30.0  # shorter game files are jingles and sound effects
MIN_PASSAGE_S = 10.0
SEGMENT_S = 30.0  # the pools hold passages of at most this length
TARGET_RMS_DB = -20.0
PEAK = 0.95


def log(msg: str) -> None:
    """One line on stderr, above any progress bar."""
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def item_rng(seed: int, source: str, item: str) -> np.random.Generator:
    """The random stream of one item: the same whatever order or process the build takes."""
    digest = hashlib.sha1(f"{source}/{item}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:150]


# --------------------------------------------------------------------------------------------
# Audio helpers

def to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 1.0) * FULL_SCALE).astype(np.int16)


def save_npy(path: Path, x: np.ndarray) -> None:
    """`x` as int16 (channels, samples) at `path`, written aside and renamed."""
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        np.save(f, to_int16(x))
    os.replace(part, path)


def write_json(path: Path, data: dict) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=1, default=str))
    os.replace(part, path)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(channels, samples) float32 and the file's rate; soundfile first, pedalboard's reader for what
    libsndfile cannot open (MP3 on old versions)."""
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return np.ascontiguousarray(x.T), int(sr)
    except Exception as first:  # libsndfile raises several kinds of error on a file it cannot read
        try:
            from pedalboard.io import AudioFile

            with AudioFile(str(path)) as f:
                return f.read(f.frames).astype(np.float32), int(f.samplerate)
        except Exception:
            raise ValueError(str(first).splitlines()[0] if str(first) else type(first).__name__) from None


def resample(x: np.ndarray, rate: float, target: int = SAMPLE_RATE) -> np.ndarray:
    if rate == target:
        return np.ascontiguousarray(x, dtype=np.float32)
    from pedalboard.io import StreamResampler

    rs = StreamResampler(float(rate), float(target), x.shape[0])
    return np.concatenate([rs.process(np.ascontiguousarray(x, dtype=np.float32)), rs.process(None)], axis=1)


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def active_rms_db(x: np.ndarray, window: int = 4410) -> float:
    """The level of the sounding part of `x`: the RMS over windows within 40 dB of the loudest, so
    long silences and fades do not pull a quiet-ended track up."""
    n = x.shape[-1] // window
    if n == 0:
        return rms_db(x)
    e = np.square(x[..., :n * window], dtype=np.float64).reshape(-1, n, window).mean(axis=(0, 2))
    loud = e[e > e.max() * 1e-4]
    return float(10 * np.log10(loud.mean() + 1e-12))


def loudness_gain(x: np.ndarray, target_db: float = TARGET_RMS_DB, peak: float = PEAK) -> float:
    """The gain that brings `x` to `target_db` (active RMS), or lower if its peak would pass `peak`."""
    g = 10 ** ((target_db - active_rms_db(x)) / 20)
    top = float(np.abs(x).max())
    return min(g, peak / top) if top > 0 else 0.0


# --------------------------------------------------------------------------------------------
# MIDI: parts as event lists in seconds, and rendering each part on its own

@dataclass
class Part:
    """One instrument of a backing: its stem, GM program (None for drums) and events.

    `events` are ``(seconds, mido.Message)`` with note_on/note_off/control_change/pitchwheel
    messages; the channel is set at render time."""

    stem: str
    program: int | None
    events: list
    name: str = ""

    @property
    def drums(self) -> bool:
        return self.program is None

    @property
    def end(self) -> float:
        return max((t for t, _ in self.events), default=0.0)


KEPT_TYPES = {"note_on", "note_off", "control_change", "pitchwheel"}
KEPT_CONTROLS = {1, 7, 11, 64, 66, 67}  # modulation, volume, expression, pedals


def midi_tracks(path: Path) -> tuple[list[tuple[str, int, list]], list[float], int]:
    """The note streams of a MIDI file: ``[(track name, channel, [(seconds, msg)])]``, plus the
    file's beat times (seconds) and its first program per stream in the messages' order."""
    import mido

    mid = mido.MidiFile(str(path))
    tempi = []  # (tick, tempo)
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempi.append((tick, msg.tempo))
    tempi.sort()
    if not tempi or tempi[0][0] != 0:
        tempi.insert(0, (0, 500000))
    starts, secs = [], [0.0]
    for i, (tick, tempo) in enumerate(tempi):
        starts.append(tick)
        if i + 1 < len(tempi):
            secs.append(secs[-1] + (tempi[i + 1][0] - tick) * tempo / 1e6 / mid.ticks_per_beat)
    starts_a = np.array(starts)

    def seconds(tick: int) -> float:
        i = int(np.searchsorted(starts_a, tick, side="right") - 1)
        return secs[i] + (tick - starts[i]) * tempi[i][1] / 1e6 / mid.ticks_per_beat

    streams: dict[tuple[int, int], list] = {}
    names, programs = {}, {}
    last_tick = 0
    for ti, track in enumerate(mid.tracks):
        tick, name = 0, ""
        for msg in track:
            tick += msg.time
            if msg.type == "track_name":
                name = msg.name
            elif msg.type == "program_change":
                programs.setdefault((ti, msg.channel), msg.program)
            elif msg.type in KEPT_TYPES and (msg.type != "control_change" or msg.control in KEPT_CONTROLS):
                streams.setdefault((ti, msg.channel), []).append((seconds(tick), msg))
                last_tick = max(last_tick, tick)
        for key in streams:
            if key[0] == ti:
                names[key] = name
    out = [(names.get(k, ""), k[1], ev) for k, ev in sorted(streams.items())
           if any(m.type == "note_on" and m.velocity > 0 for _, m in ev)]
    beats = [seconds(t) for t in range(0, last_tick + mid.ticks_per_beat, mid.ticks_per_beat)]
    prog = [programs.get(k) for k in sorted(streams)]
    return out, beats, prog


def notes_of(events: list) -> list[tuple[float, float, int, int]]:
    """``(start, end, pitch, velocity)`` of each note in an event list."""
    open_, notes = {}, []
    for t, m in events:
        if m.type == "note_on" and m.velocity > 0:
            open_.setdefault(m.note, []).append((t, m.velocity))
        elif m.type in ("note_off", "note_on") and open_.get(m.note):
            s, v = open_[m.note].pop(0)
            notes.append((s, t, m.note, v))
    return sorted(notes)


def derived_bass(events: list, beats: list[float]) -> list:
    """A bass line from an accompaniment's notes: on each beat, the lowest note sounding there,
    moved into the bass register (E1 to D#3), held for most of the beat."""
    import mido

    notes = notes_of(events)
    out = []
    for b0, b1 in zip(beats[:-1], beats[1:]):
        sounding = [n for n in notes if n[0] < b1 - 0.02 and n[1] > b0 + 0.02]
        if not sounding:
            continue
        pitch = min(n[2] for n in sounding)
        vel = int(np.clip(max(n[3] for n in sounding) + 5, 40, 120))
        bass = 28 + (pitch - 28) % 12  # E1 .. D#2
        if bass < 33:
            bass += 12 * (pitch > 52)
        out.append((b0, mido.Message("note_on", note=bass, velocity=vel)))
        out.append((b0 + 0.9 * (b1 - b0), mido.Message("note_off", note=bass, velocity=0)))
    return out


def retimed(events: list, tempo: float, transpose: int, drums: bool) -> list:
    """Events played `tempo` times as fast and moved by `transpose` semitones (not drums)."""
    out = []
    for t, m in events:
        if not drums and m.type in ("note_on", "note_off"):
            note = m.note + transpose
            while note > 127:
                note -= 12
            while note < 0:
                note += 12
            m = m.copy(note=note)
        out.append((t / tempo, m))
    return out


RENDER_TAIL_S = 3.0


def render_fluidsynth(parts: list[Part], font: str, drum_program: int = 0, gain: float = 0.3) -> list[np.ndarray]:
    """Each of `parts` rendered on its own by fluidsynth with soundfont file `font`: (2, samples)
    float32 arrays at 44.1 kHz, all the same length.

    One fluidsynth run plays the parts one after another, each in its own time slot that starts on
    a 64-sample block, so the soundfont is loaded once; the output is cut back into parts. The MIDI
    file is written with one tick per sample, so each slot starts exactly where it is cut."""
    import mido

    mid = mido.MidiFile(type=0, ticks_per_beat=441)  # 441 ticks at 10 ms per beat: 1 tick = 1 sample
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=10000, time=0))
    length = int(np.ceil((max(p.end for p in parts) + RENDER_TAIL_S) * SAMPLE_RATE / 64)) * 64
    timeline = []
    for k, p in enumerate(parts):
        base = k * (length + 64 * 16)
        ch = 9 if p.drums else [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15][k % 15]
        timeline.append((base, 0, mido.Message("control_change", channel=ch, control=121, value=0)))
        timeline.append((base, 1, mido.Message("program_change", channel=ch,
                                               program=drum_program if p.drums else p.program)))
        timeline.append((base, 2, mido.Message("control_change", channel=ch, control=7, value=100)))
        timeline.append((base, 2, mido.Message("control_change", channel=ch, control=10, value=64)))
        for t, m in p.events:
            timeline.append((base + 64 * 8 + int(round(t * SAMPLE_RATE)), 3, m.copy(channel=ch)))
        timeline.append((base + length + 64 * 8, 4, mido.Message("control_change", channel=ch, control=123, value=0)))
        timeline.append((base + length + 64 * 8, 4, mido.Message("control_change", channel=ch, control=64, value=0)))
        timeline.append((base + length + 64 * 12, 5, mido.Message("control_change", channel=ch, control=120, value=0)))
    timeline.sort(key=lambda e: (e[0], e[1]))
    now = 0
    for tick, _, m in timeline:
        track.append(m.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=64 * 16))
    with tempfile.TemporaryDirectory(prefix="acapella-render-") as tmp:
        mpath, wpath = Path(tmp) / "parts.mid", Path(tmp) / "parts.wav"
        mid.save(str(mpath))
        cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", str(gain), "-o", "synth.dynamic-sample-loading=1",
               "-o", "synth.polyphony=512", "-O", "float", "-T", "wav", "-F", str(wpath), "-r", str(SAMPLE_RATE),
               font, str(mpath)]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if run.returncode != 0 or not wpath.is_file():
            raise RuntimeError(f"fluidsynth failed ({(run.stderr or run.stdout).strip().splitlines()[-1:] or run.returncode})")
        audio, _ = sf.read(str(wpath), dtype="float32", always_2d=True)
    audio = audio.T
    out = []
    for k in range(len(parts)):
        a = k * (length + 64 * 16) + 64 * 8
        seg = audio[:, a:a + length]
        out.append(np.pad(seg, ((0, 0), (0, length - seg.shape[1]))))
    return out


# GM drum notes -> the kit instrument kinds that can play them, best first.
GM_DRUMS = {
    35: ["kick"], 36: ["kick"], 37: ["stick", "snare"], 38: ["snare"], 40: ["snare"], 39: ["clap", "snare"],
    41: ["tom_low", "tom"], 43: ["tom_low", "tom"], 45: ["tom_mid", "tom"], 47: ["tom_mid", "tom"],
    48: ["tom_high", "tom"], 50: ["tom_high", "tom"], 42: ["hat_closed", "hat"], 22: ["hat_closed", "hat"],
    44: ["hat_pedal", "hat_closed", "hat"], 46: ["hat_open", "hat"], 26: ["hat_open", "hat"],
    49: ["crash", "ride"], 52: ["crash", "ride"], 55: ["crash", "ride"], 57: ["crash", "ride"],
    51: ["ride", "crash"], 59: ["ride", "crash"], 53: ["bell", "ride"], 56: ["cowbell"],
}


def drum_kind(name: str) -> list[str]:
    """The kinds a kit instrument named `name` can stand for."""
    n = name.lower()
    kinds = []
    if "kick" in n or "bass drum" in n or "bassdrum" in n or re.search(r"\bbd\b", n):
        kinds.append("kick")
    if "stick" in n or "rim" in n:
        kinds.append("stick")
    elif "snare" in n:
        kinds.append("snare")
    if "clap" in n:
        kinds.append("clap")
    if "tom" in n:
        kinds.append("tom")
        kinds.append("tom_low" if ("low" in n or "floor" in n) else "tom_high" if ("hi" in n) else "tom_mid")
    if "hat" in n or "hh" in n:
        kinds.append("hat")
        kinds.append("hat_open" if ("open" in n or "op" in n.split()) else
                     "hat_pedal" if ("pedal" in n or "pd" in n.split()) else "hat_closed")
    if "crash" in n or "splash" in n:
        kinds.append("crash")
    if "ride" in n and "bell" not in n:
        kinds.append("ride")
    if "bell" in n or "cup" in n:
        kinds.append("bell" if "cow" not in n else "cowbell")
    return kinds


class DrumKit:
    """A Hydrogen drum kit (``drumkit.xml`` and its samples) played from GM drum notes.

    Each instrument's layers are picked by velocity, as Hydrogen does; the instruments are
    mapped to GM notes by their names (kick, snare, toms, hi-hats, cymbals)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        root = ET.parse(self.folder / "drumkit.xml").getroot()
        ns = re.match(r"\{.*\}", root.tag)
        ns = ns.group(0) if ns else ""
        self.name = (root.findtext(f"{ns}name") or self.folder.name).strip()
        self.license = (root.findtext(f"{ns}license") or "").strip()
        self.by_kind: dict[str, list] = {}
        self._cache: dict[str, np.ndarray] = {}
        for inst in root.iter(f"{ns}instrument"):
            name = inst.findtext(f"{ns}name") or ""
            layers = []
            for layer in inst.iter(f"{ns}layer"):
                fn = layer.findtext(f"{ns}filename")
                if fn:
                    layers.append((float(layer.findtext(f"{ns}min") or 0), float(layer.findtext(f"{ns}max") or 1),
                                   float(layer.findtext(f"{ns}gain") or 1), fn))
            if not layers and inst.findtext(f"{ns}filename"):
                layers.append((0.0, 1.0, 1.0, inst.findtext(f"{ns}filename")))
            if not layers:
                continue
            pan = (float(inst.findtext(f"{ns}pan_L") or 1), float(inst.findtext(f"{ns}pan_R") or 1))
            gain = float(inst.findtext(f"{ns}volume") or 1) * float(inst.findtext(f"{ns}gain") or 1)
            for kind in drum_kind(name):
                self.by_kind.setdefault(kind, []).append((layers, pan, gain))

    @property
    def playable(self) -> bool:
        """Whether the kit has what a drum kit needs: a kick, a snare and a hi-hat."""
        return all(k in self.by_kind for k in ("kick", "snare", "hat"))

    def _sample(self, filename: str) -> np.ndarray:
        if filename not in self._cache:
            x, sr = read_audio(self.folder / filename)
            x = resample(x, sr)
            self._cache[filename] = x if x.shape[0] == 2 else np.repeat(x[:1], 2, axis=0)
        return self._cache[filename]

    def play(self, events: list, length: int, rng: np.random.Generator) -> np.ndarray:
        """(2, length) float32: the note_on events of `events` ((seconds, msg)) struck on the kit."""
        out = np.zeros((2, length), dtype=np.float32)
        choice = {}
        for t, m in events:
            if m.type != "note_on" or m.velocity == 0:
                continue
            kinds = GM_DRUMS.get(m.note)
            if not kinds:
                continue
            inst = None
            for k in kinds:
                if k in self.by_kind:
                    if k not in choice:  # one instrument per kind for the whole song, like a drummer's kit
                        choice[k] = self.by_kind[k][rng.integers(len(self.by_kind[k]))]
                    inst = choice[k]
                    break
            if inst is None:
                continue
            layers, pan, gain = inst
            vel = m.velocity / 127
            layer = next((l for l in layers if l[0] <= vel <= l[1]), layers[-1])
            x = self._sample(layer[3])
            s = int(round(t * SAMPLE_RATE))
            if s >= length:
                continue
            n = min(x.shape[1], length - s)
            amp = gain * layer[2] * (vel if len(layers) == 1 else 0.5 + 0.5 * vel)
            out[0, s:s + n] += x[0, :n] * amp * pan[0]
            out[1, s:s + n] += x[1, :n] * amp * pan[1]
        return out


def drumkits() -> list[Path]:
    if not DRUMKITS_DIR.is_dir():
        return []
    return sorted(p for p in DRUMKITS_DIR.iterdir() if (p / "drumkit.xml").is_file())


# GM families (program // 8) that fit each role in a backing.
BASS_PROGRAMS = [32, 33, 34, 35, 36, 37, 38, 39]
FAMILY_OF = {"piano": range(0, 8), "chromatic": range(8, 16), "organ": range(16, 24), "guitar": range(24, 32),
             "bass": range(32, 40), "strings": range(40, 48), "ensemble": range(48, 56), "brass": range(56, 64),
             "reed": range(64, 72), "pipe": range(72, 80), "lead": range(80, 88), "pad": range(88, 96)}
ROLE_FAMILIES = {
    "chords": ["piano", "piano", "organ", "guitar", "guitar", "pad", "ensemble", "chromatic"],
    "line": ["strings", "ensemble", "reed", "brass", "guitar", "lead", "pipe", "chromatic", "piano"],
    "lead": ["reed", "pipe", "lead", "brass", "strings", "guitar", "chromatic"],
    "classical": ["strings", "strings", "ensemble", "reed", "brass", "pipe", "organ", "piano"],
    "classical_bass": ["bass", "strings", "brass", "reed"],
}
# Programs of a family that do not fit music (sound effects, percussive kits).
UNFIT = {55, 119, 120, 121, 122, 123, 124, 125, 126, 127, 47, 112, 113, 114, 115, 116, 117, 118}


def pick_program(rng: np.random.Generator, role: str) -> int:
    family = ROLE_FAMILIES[role][rng.integers(len(ROLE_FAMILIES[role]))]
    if role == "classical_bass":
        choices = {"bass": [32, 33, 34, 35, 36, 37, 38, 39], "strings": [42, 43], "brass": [57, 58], "reed": [70]}[family]
    else:
        choices = [p for p in FAMILY_OF[family] if p not in UNFIT]
    return int(choices[rng.integers(len(choices))])


def part_chain(rng: np.random.Generator, part: Part):
    """A random pedalboard chain for one part, as a mix engineer might put on its track."""
    from pedalboard import (Chorus, Compressor, Distortion, HighShelfFilter, LowpassFilter, LowShelfFilter,
                            Pedalboard, PeakFilter, Reverb)

    u = rng.uniform
    chain = [LowShelfFilter(cutoff_frequency_hz=u(60, 300), gain_db=u(-6, 6)),
             PeakFilter(cutoff_frequency_hz=float(np.exp(u(np.log(250), np.log(5000)))), gain_db=u(-6, 6), q=u(0.5, 2)),
             HighShelfFilter(cutoff_frequency_hz=u(3000, 10000), gain_db=u(-8, 5))]
    guitar = part.program is not None and 24 <= part.program < 32
    if guitar and rng.random() < (0.9 if part.program in (29, 30) else 0.3):
        chain += [Distortion(drive_db=u(8, 30)), LowpassFilter(cutoff_frequency_hz=u(3500, 8000))]
    if rng.random() < 0.5:
        chain.append(Compressor(threshold_db=u(-28, -8), ratio=u(2, 8), attack_ms=u(1, 30), release_ms=u(40, 300)))
    if part.stem == "other" and rng.random() < 0.25:
        chain.append(Chorus(rate_hz=u(0.2, 2), depth=u(0.1, 0.4), mix=u(0.2, 0.5)))
    if rng.random() < 0.6:
        chain.append(Reverb(room_size=u(0.1, 0.85), damping=u(0.2, 0.8), wet_level=u(0.03, 0.3 if part.stem != "bass" else 0.1),
                            dry_level=u(0.8, 1.0), width=u(0.5, 1.0)))
    return Pedalboard(chain)


def pan_part(x: np.ndarray, position: float) -> np.ndarray:
    theta = (position + 1.0) * np.pi / 4
    return x * (np.sqrt(2) * np.array([[np.cos(theta)], [np.sin(theta)]], dtype=np.float32))


# Relative levels of the parts of a backing (dB, before the whole is normalised).
PART_LEVEL_DB = {"drums": (-18, 4), "bass": (-20, 4), "other": (-23, 5)}


def render_backing(parts: list[Part], rng: np.random.Generator, tempo: float, transpose: int,
                   info: dict) -> dict[str, np.ndarray]:
    """The stems ({drums, bass, other}: (2, n) float32) of a backing rendered part by part.

    Soundfont, drum kit, each part's program (within the family it was given), tempo,
    transposition, pan, level and effect chain are drawn from `rng` and recorded in `info`."""
    fonts = [k for k, (f, _) in FONTS.items() if Path(f).is_file()]
    if not fonts:
        raise RuntimeError("no soundfont: install fluid-soundfont-gm, musescore-general-soundfont or timgm6mb-soundfont")
    font = fonts[rng.integers(len(fonts))]
    parts = [Part(p.stem, p.program, retimed(p.events, tempo, transpose, p.drums), p.name) for p in parts]
    kits = drumkits()
    kit = None
    if any(p.drums for p in parts) and kits and rng.random() < 0.4:
        kit = DrumKit(kits[rng.integers(len(kits))])
        if not kit.playable:
            kit = None
    synth = [p for p in parts if not (p.drums and kit is not None)]
    drum_program = int(rng.choice([0, 8, 16, 24, 25, 32, 40])) if font != "TimGM6mb" else 0
    rendered = render_fluidsynth(synth, FONTS[font][0], drum_program) if synth else []
    length = max([r.shape[1] for r in rendered] + [int((max(p.end for p in parts) + RENDER_TAIL_S) * SAMPLE_RATE)])
    audio, k = [], 0
    for p in parts:
        if p.drums and kit is not None:
            audio.append(kit.play(p.events, length, rng))
        else:
            audio.append(rendered[k])
            k += 1
    stems = {s: np.zeros((2, length), dtype=np.float32) for s in STEM_PARTS}
    info.update(font=font, drumkit=kit.name if kit else None, drum_program=None if kit else drum_program,
                tempo=round(tempo, 4), transpose=transpose, parts=[])
    for p, x in zip(parts, audio):
        x = np.pad(x, ((0, 0), (0, length - x.shape[1])))[:, :length]
        if np.abs(x).max() < 1e-5:
            info["parts"].append({"name": p.name, "stem": p.stem, "program": p.program, "silent": True})
            continue
        x = part_chain(rng, p)(x, SAMPLE_RATE)
        pos = 0.0 if p.stem in ("drums", "bass") else float(rng.uniform(-0.7, 0.7))
        mean, spread = PART_LEVEL_DB[p.stem]
        level = mean + rng.uniform(-spread, spread)
        x = pan_part(x, pos) * loudness_gain(x, level, peak=10.0)
        stems[p.stem] += x
        info["parts"].append({"name": p.name, "stem": p.stem, "program": p.program, "pan": round(pos, 2),
                              "level_db": round(level, 1)})
    return stems


# --------------------------------------------------------------------------------------------
# Candidates of each source

def groove_files(data: Path) -> list[dict]:
    import csv

    base = data / "midi" / "groove"
    with open(base / "info.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if (base / row["midi_filename"]).is_file()]


def groove_parts(path: Path) -> list[Part]:
    tracks, _, _ = midi_tracks(path)
    events = sorted((e for _, _, ev in tracks for e in ev), key=lambda e: e[0])
    return [Part("drums", None, events, "drums")]


def looped(events: list, loop_s: float, until: float, start: float = 0.0) -> list:
    out, k = [], 0
    while start + k * loop_s < until:
        out += [(start + k * loop_s + t, m) for t, m in events if start + k * loop_s + t < until]
        k += 1
    return out


def pop909_parts(path: Path, rng: np.random.Generator, grooves: list[dict], data: Path, info: dict) -> list[Part]:
    """The arrangement of one POP909 song: its piano and bridge as chord and line parts, its
    melody sometimes played by a lead instrument, a bass line derived from the piano, and,
    usually, a Groove MIDI drum beat looped under it at the song's tempo."""
    tracks, beats, _ = midi_tracks(path)
    by_name = {name.upper(): ev for name, _, ev in tracks}
    parts = []
    if "PIANO" in by_name:
        parts.append(Part("other", pick_program(rng, "chords"), by_name["PIANO"], "piano"))
        parts.append(Part("bass", int(rng.choice(BASS_PROGRAMS)), derived_bass(by_name["PIANO"], beats), "bass"))
    if "BRIDGE" in by_name:
        parts.append(Part("other", pick_program(rng, "line"), by_name["BRIDGE"], "bridge"))
    if "MELODY" in by_name and rng.random() < 0.5:
        parts.append(Part("other", pick_program(rng, "lead"), by_name["MELODY"], "melody"))
    end = max(p.end for p in parts) if parts else 0
    beats_4 = [g for g in grooves if g["beat_type"] == "beat" and g["time_signature"] == "4-4"]
    if parts and beats_4 and rng.random() < 0.85 and len(beats) > 8:
        g = beats_4[rng.integers(len(beats_4))]
        song_beat = float(np.median(np.diff(beats)))
        groove_beat = 60.0 / float(g["bpm"])
        ratio = groove_beat / song_beat
        while ratio > 1.45:
            ratio /= 2
        while ratio < 0.7:
            ratio *= 2
        events = groove_parts(data / "midi" / "groove" / g["midi_filename"])[0].events
        events = [(t / ratio, m) for t, m in events]
        bar = 4 * groove_beat / ratio
        bars = max(1, int((max(t for t, _ in events) + 0.1) // bar))
        first = min(p.events[0][0] for p in parts if p.events)
        parts.append(Part("drums", None, looped([e for e in events if e[0] < bars * bar], bars * bar, end, first), "drums"))
        info["groove"] = g["midi_filename"]
    return parts


MUSIC21_COMPOSERS = ["bach", "beethoven", "haydn", "mozart", "monteverdi", "palestrina", "corelli", "handel",
                     "schubert", "joplin"]


def music21_files() -> list[str]:
    from music21 import corpus

    out = []
    for composer in MUSIC21_COMPOSERS:
        try:
            out += [str(p) for p in corpus.getComposer(composer)]
        except Exception:  # a composer missing from this music21 version's corpus
            continue
    return sorted(set(out))


def music21_parts(path: str, rng: np.random.Generator, tmp: Path) -> list[Part]:
    """The parts of a music21 corpus score (written out by music21 as MIDI, one track per part):
    the lowest as the bass, the others as lines of a classical ensemble."""
    from music21 import converter

    score = converter.parse(path)
    if hasattr(score, "scores"):  # an opus: its first score
        score = score.scores[0]
    mpath = tmp / "score.mid"
    score.write("midi", fp=str(mpath))
    tracks, _, _ = midi_tracks(mpath)
    if len(tracks) < 2:
        return []
    pitches = [np.mean([m.note for _, m in ev if m.type == "note_on" and m.velocity > 0]) for _, _, ev in tracks]
    low = int(np.argmin(pitches))
    parts = []
    for i, (name, _, ev) in enumerate(tracks):
        if i == low:
            parts.append(Part("bass", pick_program(rng, "classical_bass"), ev, name or "bass"))
        else:
            parts.append(Part("other", pick_program(rng, "classical"), ev, name or f"part{i}"))
    return parts


def game_tracks(packages: list[str], downloads: Path, extract: Path, report) -> tuple[list[tuple[str, Path]], dict]:
    """The music files of the game packages: downloaded (once) with apt-get download, unpacked with
    dpkg-deb -x (and the zip members of .pk3 files), as ``[(package, file)]``, plus each package's
    version. A package that cannot be fetched or unpacked is reported and skipped."""
    downloads.mkdir(parents=True, exist_ok=True)
    versions, tracks = {}, []
    for pkg in packages:
        debs = sorted(downloads.glob(f"{pkg}_*.deb"))
        if not debs:
            run = subprocess.run(["apt-get", "download", pkg], cwd=downloads, capture_output=True, text=True)
            debs = sorted(downloads.glob(f"{pkg}_*.deb"))
            if run.returncode != 0 or not debs:
                why = (run.stderr.strip().splitlines() or ["no .deb"])[-1]
                report(f"game: package {pkg} could not be downloaded ({why}); skipped")
                continue
        deb = debs[-1]
        target = extract / pkg
        done = target / ".extracted"
        if not done.is_file():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            run = subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], capture_output=True, text=True)
            if run.returncode != 0:
                report(f"game: package {pkg}: {deb.name} could not be unpacked ({run.stderr.strip()[:200]}); skipped")
                continue
            for pk3 in sorted(target.rglob("*.pk3")):
                try:
                    with zipfile.ZipFile(pk3) as z:
                        for member in z.namelist():
                            if Path(member).suffix.lower() in AUDIO_EXTENSIONS:
                                z.extract(member, pk3.with_suffix(".pk3.d"))
                except (zipfile.BadZipFile, OSError) as exc:
                    report(f"game: {pkg}: {pk3.name} is not a readable zip archive ({exc}); skipped")
            done.write_text("")
        versions[pkg] = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                                       text=True).stdout.strip()
        music_package = pkg.endswith(("-music", "-music-ogg"))
        for f in sorted(target.rglob("*")):
            if f.suffix.lower() not in AUDIO_EXTENSIONS or not f.is_file():
                continue
            rel = f.relative_to(target)
            if music_package or any(part.lower() == "music" for part in rel.parts[:-1]):
                tracks.append((pkg, f))
    return tracks, versions


def vocal_clips(data: Path) -> dict[str, list[tuple[str, Path, bool]]]:
    """The vocal stems to widen, per source: ``[(clip name, file, band-limited)]``; validation
    songs and singers are left out."""
    from acapella.evaluate import is_validation_clip

    folders = {"musdb": "musdb7-train", "pjs": "pjs-vocals", "mir1k": "mir1k-train", "eif": "eif-vocals"}
    out = {}
    for source, folder in folders.items():
        base = data / folder
        clips = []
        if base.is_dir():
            for song in sorted(p for p in base.iterdir() if p.is_dir()):
                if is_validation_clip(song.name):
                    continue
                f = next(iter(sorted(song.glob("vocals.*"))), None)
                if f is not None:
                    limited = source == "mir1k" or (source == "eif" and song.name.startswith("Hydrogen"))
                    clips.append((song.name, f, limited))
        out[source] = clips
    return out


# --------------------------------------------------------------------------------------------
# Items

_SEPARATOR = None


def separator(threads: int):
    global _SEPARATOR
    if _SEPARATOR is None:
        from acapella import Separator

        _SEPARATOR = Separator("default", threads=threads, vocal_pan=0.0)
    return _SEPARATOR


def voice_windows(x: np.ndarray, threads: int) -> np.ndarray:
    """Per SCREEN_WINDOW_S window of `x` (2, n) at 44.1 kHz: the share of its energy (dB) that the
    shipped model calls vocals."""
    v = separator(threads).separate(x if x.shape[0] == 2 else np.repeat(x, 2, axis=0), SAMPLE_RATE)["vocals"]
    w = int(SCREEN_WINDOW_S * SAMPLE_RATE)
    n = max(1, int(np.ceil(x.shape[1] / w)))
    out = np.empty(n)
    xx = x if x.shape[0] == 2 else np.repeat(x, 2, axis=0)
    for i in range(n):
        ev = float(np.square(v[:, i * w:(i + 1) * w], dtype=np.float64).sum())
        ex = float(np.square(xx[:, i * w:(i + 1) * w], dtype=np.float64).sum())
        out[i] = 10 * np.log10((ev + 1e-9) / (ex + 1e-9)) if ex > 1e-6 else -100.0
    return out


def segments_of(length: int, spans: list[tuple[int, int]] | None = None) -> list[list[int]]:
    """[start, stop) passages of at most SEGMENT_S within `spans` (default: the whole length)."""
    seg = int(SEGMENT_S * SAMPLE_RATE)
    out = []
    for a, b in spans or [(0, length)]:
        n = max(1, int(np.ceil((b - a) / seg)))
        edges = np.linspace(a, b, n + 1).astype(int)
        out += [[int(s), int(e)] for s, e in zip(edges[:-1], edges[1:])]
    return out


def build_game(item_dir: Path, path: Path, threads: int) -> dict:
    x, sr = read_audio(path)
    seconds = x.shape[1] / sr
    if seconds < MIN_MUSIC_S:
        return {"status": "dropped", "reason": "sound effect or jingle (under 30 s)", "seconds": seconds}
    x = resample(x, sr)
    if x.shape[0] > 2:
        x = x[:2]
    if active_rms_db(x) < -60:
        return {"status": "dropped", "reason": "silent", "seconds": seconds}
    voice = voice_windows(x, threads)
    w = int(SCREEN_WINDOW_S * SAMPLE_RATE)
    flagged = voice > VOICE_DB
    if flagged.mean() > 0.5:
        return {"status": "dropped", "reason": "holds voices (screen)", "seconds": seconds,
                "voice_db_median": round(float(np.median(voice)), 1)}
    spans, start = [], None
    for i, f in enumerate(list(flagged) + [True]):
        if not f and start is None:
            start = i
        elif f and start is not None:
            a, b = start * w, min(i * w, x.shape[1])
            if b - a >= MIN_PASSAGE_S * SAMPLE_RATE:
                spans.append((a, b))
            start = None
    if not spans:
        return {"status": "dropped", "reason": "no passage of 10 s without a voice (screen)", "seconds": seconds}
    kept = np.concatenate([x[:, a:b] for a, b in spans], axis=1)
    kept *= loudness_gain(kept)
    stored, pos = [], 0
    for a, b in spans:
        stored.append((pos, pos + b - a))
        pos += b - a
    save_npy(item_dir / "accompaniment.npy", kept)
    dropped = seconds - kept.shape[1] / SAMPLE_RATE
    return {"status": "kept", "seconds": kept.shape[1] / SAMPLE_RATE, "stems": ["accompaniment"],
            "segments": segments_of(kept.shape[1], stored), "source_rate": sr,
            "limited": sr < 32000, "dropped_seconds": round(dropped, 1),
            "voice_windows_dropped": int(flagged.sum())}


def finish_backing(item_dir: Path, stems: dict[str, np.ndarray], info: dict) -> dict:
    mix = sum(stems.values())
    g = loudness_gain(mix)
    present = [s for s in STEM_PARTS if np.abs(stems[s]).max() > 1e-5]
    if not present or g == 0:
        return {"status": "dropped", "reason": "rendered silent", **info}
    # One gain for every stem keeps their sum the accompaniment; no stem may clip on its own either.
    g = min(g, PEAK / max(float(np.abs(stems[s]).max()) for s in present))
    # Trim the silence before the first and after the last sound.
    env = np.abs(mix).max(axis=0) * g > 1e-4
    idx = np.flatnonzero(env)
    a, b = int(idx[0]), int(idx[-1]) + 1
    for s in present:
        save_npy(item_dir / f"{s}.npy", stems[s][:, a:b] * g)
    return {"status": "kept", "seconds": (b - a) / SAMPLE_RATE, "stems": present,
            "segments": segments_of(b - a), "limited": False, **info}


def build_midi(source: str, item_dir: Path, ref: str, seed: int, data: Path) -> dict:
    rng = item_rng(seed, source, ref)
    info: dict = {"file": ref}
    tempo = float(rng.uniform(0.85, 1.15))
    transpose = int(rng.integers(-4, 5))
    with tempfile.TemporaryDirectory(prefix="acapella-midi-") as tmp:
        if source == "groove":
            parts = groove_parts(data / "midi" / "groove" / ref)
        elif source == "pop909":
            parts = pop909_parts(data / "midi" / "pop909" / ref, rng, groove_files(data), data, info)
        else:
            parts = music21_parts(ref, rng, Path(tmp))
    if not parts:
        return {"status": "dropped", "reason": "no parts with notes", **info}
    if max(p.end for p in parts) / tempo < 8:
        return {"status": "dropped", "reason": "under 8 s", **info}
    stems = render_backing(parts, rng, tempo, transpose, info)
    return finish_backing(item_dir, stems, info)


def widen(x: np.ndarray, rng: np.random.Generator, limited: bool, info: dict) -> np.ndarray:
    """A voice as another singer in another song might give it: pitch moved by up to 5 semitones
    either way, formants by up to 3 (a larger or smaller vocal tract), tempo by up to 15%, then the
    EQ, compression and reverb a mix puts on a voice.

    A formant shift is a speed change (pitch and formants together) followed by a formant-keeping
    pitch shift back. Band-limited clips only move up, so their empty top band never falls into
    the part of the spectrum the loss sees."""
    from pedalboard import Compressor, HighShelfFilter, LowShelfFilter, Pedalboard, PeakFilter, Reverb, time_stretch

    pitch = float(rng.uniform(0 if limited else -5, 5))
    formant = float(rng.uniform(0 if limited else -2.5, 2.5))
    tempo = float(rng.uniform(0.88, 1.15))
    rate = 2 ** (formant / 12)
    y = resample(x, SAMPLE_RATE * rate)  # played `rate` times as fast: pitch and formants up by `formant`
    y = time_stretch(np.ascontiguousarray(y, dtype=np.float32), SAMPLE_RATE, stretch_factor=tempo / rate,
                     pitch_shift_in_semitones=pitch - formant, preserve_formants=True)
    u = rng.uniform
    chain = [LowShelfFilter(cutoff_frequency_hz=u(80, 250), gain_db=u(-6, 3)),
             PeakFilter(cutoff_frequency_hz=u(1500, 5000), gain_db=u(-3, 5), q=u(0.7, 2)),
             HighShelfFilter(cutoff_frequency_hz=u(6000, 12000), gain_db=u(-4, 4))]
    if rng.random() < 0.6:
        chain.append(Compressor(threshold_db=u(-30, -12), ratio=u(2, 6), attack_ms=u(2, 20), release_ms=u(50, 250)))
    if rng.random() < 0.5:
        chain.append(Reverb(room_size=u(0.1, 0.8), damping=u(0.3, 0.8), wet_level=u(0.03, 0.25),
                            dry_level=u(0.8, 1.0), width=u(0.3, 1.0)))
    y = Pedalboard(chain)(y, SAMPLE_RATE)
    info.update(pitch=round(pitch, 2), formant=round(formant, 2), tempo=round(tempo, 3),
                chain=[type(p).__name__ for p in chain])
    return y


def build_vocal(item_dir: Path, source: str, name: str, path: Path, limited: bool, variant: int, seed: int) -> dict:
    x, sr = read_audio(path)
    x = resample(x, sr)
    info: dict = {"file": str(path), "variant": variant}
    if variant > 0:
        x = widen(x, item_rng(seed, source, f"{name}-v{variant}"), limited, info)
    g = loudness_gain(x)
    if g == 0:
        return {"status": "dropped", "reason": "silent", **info}
    x = x * g
    save_npy(item_dir / "vocals.npy", x)
    return {"status": "kept", "seconds": x.shape[1] / SAMPLE_RATE, "stems": ["vocals"], "limited": limited,
            "segments": segments_of(x.shape[1]), **info}


def run_item(kind: str, source: str, item_id: str, item_dir: str, args: tuple) -> tuple[str, str, dict]:
    """Builds one item in a worker process; returns its record (also written as item.json)."""
    item_dir = Path(item_dir)
    shutil.rmtree(item_dir, ignore_errors=True)
    item_dir.mkdir(parents=True)
    try:
        if kind == "game":
            rec = build_game(item_dir, *args)
        elif kind == "midi":
            rec = build_midi(source, item_dir, *args)
        else:
            rec = build_vocal(item_dir, source, *args)
    except Exception as exc:  # a corrupt file or failed render: recorded and reported, never silent
        rec = {"status": "failed", "reason": f"{type(exc).__name__}: {(str(exc) or '').splitlines()[0][:300] if str(exc) else ''}"}
    rec.update(source=source, id=item_id, format=CACHE_FORMAT)
    write_json(item_dir / "item.json", rec)
    return source, item_id, rec


# --------------------------------------------------------------------------------------------
# The build

def hours_option(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, _, value = (p.strip() for p in part.partition("="))
        if name not in ACCOMPANIMENT_SOURCES:
            raise argparse.ArgumentTypeError(f"unknown source {name!r} in {text!r}: use {', '.join(ACCOMPANIMENT_SOURCES)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} in {text!r} is not SOURCE=HOURS, e.g. game=2") from None
        if not out[name] >= 0:
            raise argparse.ArgumentTypeError(f"hours of {name} must not be negative, got {value}")
    return out


def versions() -> dict:
    """What the build used, with versions: tools, Python packages and Debian packages."""
    import mido
    import pedalboard

    out = {"python": sys.version.split()[0], "numpy": np.__version__, "pedalboard": pedalboard.__version__,
           "mido": getattr(mido, "__version__", "?")}
    try:
        import music21

        out["music21"] = music21.__version__
    except ImportError:
        out["music21"] = None
    run = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True) if shutil.which("fluidsynth") else None
    out["fluidsynth"] = run.stdout.splitlines()[0] if run and run.stdout else None
    debs = {}
    for pkg in ["fluidsynth", "hydrogen-drumkits"] + [p for _, p in FONTS.values()]:
        q = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        debs[pkg] = q.stdout.strip() if q.returncode == 0 else None
    out["debian"] = debs
    model = Path(__file__).with_name("default.onnx")
    out["screen_model_sha1"] = hashlib.sha1(model.read_bytes()).hexdigest() if model.is_file() else None
    return out


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def read_items(out: Path) -> dict[tuple[str, str], dict]:
    recs = {}
    for f in (out / "items").glob("*/*/item.json"):
        try:
            rec = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # an unfinished write: the item is built again
        if rec.get("format") == CACHE_FORMAT:
            recs[(rec["source"], rec["id"])] = rec
    return recs


def summarize(recs: dict, out: Path) -> dict:
    per = {}
    for (source, _), rec in recs.items():
        s = per.setdefault(source, {"items": 0, "kept": 0, "hours": 0.0, "dropped": {}, "failed": 0})
        s["items"] += 1
        if rec["status"] == "kept":
            s["kept"] += 1
            s["hours"] += rec["seconds"] / 3600
            if rec.get("dropped_seconds"):
                key = "voice passages cut (screen)"
                s["dropped"][key] = s["dropped"].get(key, 0.0) + rec["dropped_seconds"] / 3600
        elif rec["status"] == "dropped":
            key = rec["reason"]
            s["dropped"][key] = s["dropped"].get(key, 0.0) + rec.get("seconds", 0) / 3600
        else:
            s["failed"] += 1
    for s in per.values():
        s["hours"] = round(s["hours"], 3)
        s["dropped"] = {k: round(v, 3) for k, v in s["dropped"].items()}
    return per


def print_summary(per: dict, size: int) -> None:
    print(f"{'source':10} {'items':>6} {'kept':>6} {'hours':>7} {'failed':>6}  dropped (hours)")
    for source in ACCOMPANIMENT_SOURCES + VOCAL_SOURCES:
        if source in per:
            s = per[source]
            dropped = "; ".join(f"{k}: {v:.2f}" for k, v in s["dropped"].items()) or "-"
            print(f"{source:10} {s['items']:6d} {s['kept']:6d} {s['hours']:7.2f} {s['failed']:6d}  {dropped}")
    acc = sum(per[s]["hours"] for s in ACCOMPANIMENT_SOURCES if s in per)
    voc = sum(per[s]["hours"] for s in VOCAL_SOURCES if s in per)
    print(f"accompaniment {acc:.2f} h, vocals {voc:.2f} h, {size / 1e9:.2f} GB on disk")


def plan(args, report) -> tuple[dict[str, list], dict]:
    """Every candidate item per source, in the build's (seeded) order: ``{source: [(kind, id, args)]}``."""
    data = args.data
    rng = np.random.default_rng(args.seed)
    queues: dict[str, list] = {}
    names: dict[str, str] = {}
    extra = {}
    if args.hours.get("game", 0) > 0:
        tracks, extra["game_packages"] = game_tracks(args.packages, args.downloads, args.out / "extracted", report)
        # Interleave the packages, so a small --hours draws from every soundtrack.
        by_pkg: dict[str, list] = {}
        for pkg, f in tracks:
            by_pkg.setdefault(pkg, []).append(f)
        lists = []
        for pkg in sorted(by_pkg):
            files = list(by_pkg[pkg])
            rng.shuffle(files)
            lists.append([(pkg, f) for f in files])
        order = [x for group in zip(*[l + [None] * (max(map(len, lists)) - len(l)) for l in lists]) for x in group if x] if lists else []
        queues["game"] = [("game", safe_id(f"{pkg}/{f.relative_to(args.out / 'extracted' / pkg)}"), (str(f), args.screen_threads))
                          for pkg, f in order]
    for source in MIDI_SOURCES:
        if args.hours.get(source, 0) <= 0:
            continue
        if not shutil.which("fluidsynth"):
            report(f"{source}: fluidsynth is not installed (apt-get install fluidsynth); skipped")
            continue
        try:
            if source == "groove":
                refs = [r["midi_filename"] for r in groove_files(data)]
            elif source == "pop909":
                base = data / "midi" / "pop909"
                refs = sorted(str(p.relative_to(base)) for p in base.glob("*/*.mid"))
            else:
                refs = music21_files()
                names = {r: r.split("/corpus/", 1)[-1] for r in refs}
        except (OSError, ImportError) as exc:
            report(f"{source}: its files cannot be listed ({exc}); skipped")
            continue
        if not refs:
            report(f"{source}: no MIDI files found; skipped")
            continue
        refs = list(refs)
        rng.shuffle(refs)
        queues[source] = [("midi", safe_id(names[r] if source == "music21" else r), (r, args.seed, data)) for r in refs]
    clips = vocal_clips(data)
    for source in VOCAL_SOURCES:
        if not clips.get(source):
            if args.variants or source == "eif":
                report(f"{source}: no vocal clips under {data}; skipped")
            continue
        variants = range(0 if source == "eif" else 1, args.variants + 1)
        queues[source] = [("vocal", safe_id(f"{name}-v{k}"), (name, str(f), lim, k, args.seed))
                          for k in variants for name, f, lim in clips[source]]
    return queues, extra


def build(args) -> int:
    from tqdm import tqdm

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    problems = []

    def report(line: str) -> None:
        problems.append(line)
        log(f"warning: {line}")

    t0 = time.time()
    queues, extra = plan(args, report)
    recs = read_items(out)
    for rec in recs.values():
        if rec["status"] == "failed":
            report(f"{rec['source']}: {rec['id']}: {rec['reason']}; skipped (remove its item folder to try again)")
    targets = {s: args.hours.get(s, 0) * 3600 for s in ACCOMPANIMENT_SOURCES}
    size = sum(dir_bytes(d) for d in (out / "items", args.downloads) if d.is_dir())
    cap = args.max_gb * 1e9
    done_s = {s: sum(r["seconds"] for (src, _), r in recs.items() if src == s and r["status"] == "kept")
              for s in queues}
    todo = []  # (source, kind, id, args), in order
    for source, q in queues.items():
        for kind, item_id, a in q:
            todo.append((source, kind, item_id, a))
    total = sum(targets.get(s, 0) for s in queues if s in targets) + \
        sum(len(q) for s, q in queues.items() if s in VOCAL_SOURCES)
    bar = tqdm(total=round(total), unit="", desc="corpus", dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
    bar.update(round(sum(min(done_s.get(s, 0), targets[s]) for s in targets if s in queues)
                     + sum(1 for (s, _) in recs if s in VOCAL_SOURCES and s in queues)))
    capped = False

    def wanted(source: str) -> bool:
        return source in VOCAL_SOURCES or done_s.get(source, 0) < targets[source]

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        running = {}
        it = iter(todo)
        exhausted = False
        while True:
            while not exhausted and len(running) < 2 * args.jobs:
                nxt = next(it, None)
                if nxt is None:
                    exhausted = True
                    break
                source, kind, item_id, a = nxt
                if (source, item_id) in recs or not wanted(source):
                    continue
                # Count what is in flight, so a source does not overshoot by a whole queue.
                if source in targets:
                    pending = sum(1 for s in running.values() if s == source)
                    if done_s[source] + pending * 120 >= targets[source]:
                        continue
                if size >= cap:
                    if not capped:
                        report(f"the cache reached --max-gb {args.max_gb:g} ({size / 1e9:.2f} GB): no more items are added")
                        capped = True
                    exhausted = True
                    break
                fut = pool.submit(run_item, kind, source, item_id, str(out / "items" / source / item_id), a)
                running[fut] = source
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                src = running.pop(fut)
                source, item_id, rec = fut.result()
                recs[(source, item_id)] = rec
                item_dir = out / "items" / source / item_id
                size += sum(f.stat().st_size for f in item_dir.iterdir())
                if rec["status"] == "failed":
                    report(f"{source}: {item_id}: {rec['reason']}; skipped")
                if rec["status"] == "kept" and source in targets:
                    before = done_s[source]
                    done_s[source] += rec["seconds"]
                    bar.update(round(min(done_s[source], targets[source]) - min(before, targets[source])))
                elif source in VOCAL_SOURCES:
                    bar.update(1)
                bar.set_postfix_str(f"{source} {size / 1e9:.2f} GB", refresh=True)
            # Re-scan skipped candidates of sources still short of their target.
            if exhausted and not running and any(wanted(s) and s in targets for s in queues) and not capped:
                rest = [(s, k, i, a) for s, k, i, a in todo if (s, i) not in recs and wanted(s)]
                if rest:
                    it, exhausted = iter(rest), False
    bar.close()
    for source in targets:
        if source in queues and done_s[source] < targets[source] and not capped:
            report(f"{source}: only {done_s[source] / 3600:.2f} of {targets[source] / 3600:g} hours are there to take")
    shutil.rmtree(out / "extracted", ignore_errors=True)
    per = summarize(recs, out)
    size = dir_bytes(out)
    manifest = {
        "format": CACHE_FORMAT, "sample_rate": SAMPLE_RATE, "seed": args.seed,
        "command": "python -m acapella.model.corpus " + " ".join(sys.argv[1:]),
        "options": {"hours": args.hours, "variants": args.variants, "max_gb": args.max_gb, "data": str(args.data)},
        "screen": {"model": "default", "voice_db": VOICE_DB, "window_s": SCREEN_WINDOW_S, "min_music_s": MIN_MUSIC_S},
        "versions": versions() | extra, "soundfonts": {k: v[0] for k, v in FONTS.items() if Path(v[0]).is_file()},
        "drumkits": [p.name for p in drumkits()],
        "sources": per, "problems": problems, "bytes": size,
        "build_seconds_last_run": round(time.time() - t0),
    }
    write_json(out / "manifest.json", manifest)
    print_summary(per, size)
    print(f"built in {(time.time() - t0) / 60:.1f} min; manifest: {out / 'manifest.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from acapella.model.corpora import default_data_root

    ap = argparse.ArgumentParser(prog="python -m acapella.model.corpus", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or continue, or extend) a corpus cache")
    b.add_argument("--out", type=Path, required=True, help="the cache folder (a rerun continues it)")
    b.add_argument("--data", type=Path, default=None,
                   help="the folder holding the stems and midi/ (default: $ACAPELLA_DATA, else ../shared/data)")
    b.add_argument("--hours", type=hours_option, default={}, metavar="SOURCE=H,...",
                   help="hours of accompaniment to keep per source (default: "
                        + ",".join(f"{k}={v:g}" for k, v in DEFAULT_HOURS.items()) + "); 0 leaves a source out")
    b.add_argument("--variants", type=int, default=2,
                   help="widened copies of each training voice (musdb, pjs, mir1k, eif); 0 for none")
    b.add_argument("--downloads", type=Path, default=None, help="where the .deb files go (default: OUT/downloads)")
    b.add_argument("--packages", type=lambda t: [p.strip() for p in t.split(",") if p.strip()], default=GAME_PACKAGES,
                   metavar="NAME,...", help="the Debian packages the game soundtracks come from (default: the "
                                            f"{len(GAME_PACKAGES)} listed in the data README)")
    b.add_argument("--max-gb", type=float, default=10.0, help="stop adding items when the cache holds this much")
    b.add_argument("--jobs", type=int, default=2, help="items built at once (processes)")
    b.add_argument("--seed", type=int, default=1234)
    s = sub.add_parser("summary", help="print the hours per source of a cache")
    s.add_argument("dir", type=Path)
    args = ap.parse_args(argv)
    if args.command == "summary":
        if not (args.dir / "items").is_dir():
            ap.error(f"{args.dir}: not a corpus cache (no items/ folder); build one with: build --out {args.dir}")
        print_summary(summarize(read_items(args.dir), args.dir), dir_bytes(args.dir))
        return 0
    args.hours = dict(DEFAULT_HOURS, **args.hours)
    if args.variants < 0:
        ap.error(f"--variants {args.variants}: give 0 or more")
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: give 1 or more")
    if not args.max_gb > 0:
        ap.error(f"--max-gb {args.max_gb}: give a size above 0")
    args.data = args.data or default_data_root()
    if not args.data.is_dir():
        ap.error(f"--data {args.data}: no such folder; give the folder that holds musdb7-train/ and midi/")
    args.downloads = args.downloads or args.out / "downloads"
    args.screen_threads = max(1, 2 // args.jobs)
    return build(args)


if __name__ == "__main__":
    raise SystemExit(main())
