"""Backings rendered from MIDI, part by part, so their stems are exact.

A backing is a list of `Part`s (events in seconds, a stem, a GM program): `render_backing` plays
each part on its own, through fluidsynth with one of the installed soundfonts (`render_fluidsynth`)
or, for drums, a Hydrogen kit (`DrumKit`), puts it through its own pedalboard chain (`part_chain`),
pans and levels it, and sums it into its stem. Also the audio helpers the corpus engine shares:
reading, resampling, and the active-level measure used to normalise loudness.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from acapella.model.degradations import pan_stereo

SAMPLE_RATE = 44100
STEM_PARTS = ("drums", "bass", "other")
TARGET_RMS_DB = -20.0  # the level every item of the corpus is brought to (active RMS)
PEAK = 0.95

FONTS = {
    "FluidR3_GM": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
    "MuseScore_General": ("/usr/share/sounds/sf3/MuseScore_General_Full.sf3", "musescore-general-soundfont"),
    "TimGM6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
}
DRUMKITS_DIR = Path("/usr/share/hydrogen/data/drumkits")



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


def resample(x: np.ndarray, rate: float, target: int = SAMPLE_RATE, fast: bool = False) -> np.ndarray:
    """`x` (channels, samples) at `rate` Hz brought to `target` Hz: windowed sinc, or with `fast` the
    4-point Lagrange interpolator (for small speed changes of full-band audio, where it is
    transparent enough and many times faster)."""
    if rate == target:
        return np.ascontiguousarray(x, dtype=np.float32)
    from pedalboard import Resample

    from acapella.resample import resample as stream_resample

    quality = Resample.Quality.Lagrange if fast else Resample.Quality.WindowedSinc32
    return stream_resample(np.ascontiguousarray(x, dtype=np.float32), float(rate), float(target), quality)


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
        x = pan_stereo(x, pos) * loudness_gain(x, level, peak=10.0)
        stems[p.stem] += x
        info["parts"].append({"name": p.name, "stem": p.stem, "program": p.program, "pan": round(pos, 2),
                              "level_db": round(level, 1)})
    return stems
