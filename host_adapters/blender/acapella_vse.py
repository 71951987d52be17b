"""Blender add-on: split the active sound strip into stem strips with acapella.

Install: Edit > Preferences > Add-ons > Install..., pick this file, enable
"Sequencer: acapella stem separation". In the Video Sequencer, select a sound
strip and run Strip > "Separate Sound Strip (acapella)".

The add-on runs the ``acapella separate`` command on the strip's sound file
(Blender's Python usually cannot import acapella or numpy) and adds one strip
per stem on free channels above the original, with the same start, trim,
volume, pan and speed, so the stems line up with the original and sum to it.
The original strip is not changed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from typing import Any

bl_info = {
    "name": "acapella stem separation",
    "author": "acapella",
    "version": (0, 1, 0),
    "blender": (2, 93, 0),
    "location": "Video Sequencer > Strip > Separate Sound Strip (acapella)",
    "description": "Split the selected sound strip into vocals and accompaniment strips",
    "category": "Sequencer",
}

STEM_NAMES = ("vocals", "accompaniment")
MAX_CHANNEL = 128


class AcapellaError(Exception):
    """One-line message for the user, reported by the operator as an error."""


# --- helpers without bpy, so they can be tested with plain Python ----------


def parse_stems(text: str) -> list[str]:
    stems = [s.strip() for s in text.split(",") if s.strip()]
    if not stems:
        raise AcapellaError(f"no stem named in {text!r}; use e.g. vocals,accompaniment")
    for stem in stems:
        if stem not in STEM_NAMES:
            raise AcapellaError(f"unknown stem {stem!r}; choose from {', '.join(STEM_NAMES)}")
    if len(set(stems)) != len(stems):
        raise AcapellaError(f"stem listed twice in {text!r}")
    return stems


def resolve_command(setting: str) -> list[str]:
    """The acapella command line: the setting (a path, or a command line) or ``acapella`` on PATH."""
    text = setting.strip()
    if text:
        # A full path may hold spaces (or, on Windows, backslashes), so the
        # whole setting counts as one path first.
        if os.path.isfile(text):
            argv = [text]
        else:
            windows = os.name == "nt"
            try:
                argv = shlex.split(text, posix=not windows)
            except ValueError as exc:
                raise AcapellaError(f"cannot read the acapella command {text!r}: {exc}; fix it in the add-on preferences") from None
            if windows:
                argv = [a[1:-1] if len(a) > 1 and a[0] == a[-1] == '"' else a for a in argv]
        exe = argv[0]
        where = f"acapella command {exe!r}" + (f" (from {text!r})" if exe != text else "")
        if os.sep in exe or (os.altsep and os.altsep in exe):
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                raise AcapellaError(f"{where} is not an executable file; fix it in the add-on preferences")
        elif shutil.which(exe) is None:
            raise AcapellaError(f"{where} is not on PATH; set its full path in the add-on preferences")
        return argv
    found = shutil.which("acapella")
    if found is None:
        raise AcapellaError(
            "the acapella command is not on Blender's PATH; install acapella or set its full path "
            "in the add-on preferences"
        )
    return [found]


def build_command(
    acapella: list[str], source: str, out_dir: str, stems: list[str], model: str = "default"
) -> list[str]:
    argv = [*acapella, "separate", source, "-o", out_dir, "--stems", ",".join(stems), "--format", "wav"]
    if model and model != "default":
        argv += ["--model", model]
    # No --force: each run writes into a new folder (new_run_folder), so an
    # existing stem there can only be another run's, and must not be replaced.
    # --json: the CLI says where each stem went; its naming rule stays its own.
    return argv + ["--quiet", "--json"]


def read_record(stdout: str) -> dict | None:
    """The ``--json`` record that ``acapella separate`` printed for its one input, if any."""
    record = None
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                raise AcapellaError(f"acapella separate printed a record that is not JSON: {line[:80]}") from None
    return record


def new_run_folder(parent: str, in_use: list[str]) -> str:
    """Make and return PARENT/<n>, a folder no other run has: it did not exist,
    and no path in ``in_use`` (the files strips play) lies inside it.

    Stem strips play their files in place, so a later run writing where an
    earlier one did would change the audio of the earlier strips.
    """
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise AcapellaError(f"cannot create the stem folder {parent}: {exc.strerror or exc}") from None
    used = {os.path.normcase(os.path.abspath(p)) for p in in_use}
    for n in range(1, 100000):
        folder = os.path.join(parent, str(n))
        prefix = os.path.normcase(os.path.abspath(folder)) + os.sep
        if any(p.startswith(prefix) for p in used):
            continue
        try:
            os.mkdir(folder)  # fails if it exists, also when another Blender just made it
        except FileExistsError:
            continue
        except OSError as exc:
            raise AcapellaError(f"cannot create the stem folder {folder}: {exc.strerror}") from None
        return folder
    raise AcapellaError(f"no free numbered folder left in {parent}; clear out old stems")


# Blender keeps at most 61 bytes of a strip name and renames a taken name by
# cutting it at its last dot, which would drop the stem from "mix.wav - vocals".
MAX_NAME_BYTES = 61


def strip_name(strip: str, stem: str, taken: set[str]) -> str:
    """``<strip> - <stem>``, with ``.001``, ``.002``, ... when taken, shortened to fit."""
    for n in range(0, 10000):
        tail = f" - {stem}" + (f".{n:03d}" if n else "")
        head = strip.encode("utf-8")[: MAX_NAME_BYTES - len(tail.encode("utf-8"))].decode("utf-8", "ignore")
        name = head + tail
        if name not in taken:
            return name
    raise AcapellaError(f"no free strip name for {strip!r} - {stem}")


def free_channels(
    occupied: list[tuple[int, int, int]], start: int, end: int, above: int, count: int
) -> list[int]:
    """``count`` channels above ``above`` with nothing overlapping [start, end).

    ``occupied`` holds (channel, first frame, end frame) of existing strips.
    """
    chosen: list[int] = []
    channel = above + 1
    while len(chosen) < count:
        if channel > MAX_CHANNEL:
            raise AcapellaError(f"no {count} free channels above channel {above} for the stems")
        if not any(c == channel and s < end and start < e for c, s, e in occupied):
            chosen.append(channel)
        channel += 1
    return chosen


def run_separation(argv: list[str], timeout: float) -> dict[str, str]:
    """Runs ``acapella separate --json`` on one input; returns its stems' paths, by stem."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise AcapellaError(f"cannot run {argv[0]!r}: not found") from None
    except subprocess.TimeoutExpired:
        raise AcapellaError(f"acapella separate took longer than {timeout:g} s; raise the timeout") from None
    record = read_record(result.stdout or "")
    if record is not None and record.get("status") == "failed":
        raise AcapellaError(f"acapella separate failed: {record.get('reason')}")
    if result.returncode != 0 or record is None:
        lines = [l for l in (result.stderr or result.stdout).splitlines() if l.strip()]
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        raise AcapellaError(f"acapella separate failed: {detail}")
    return dict(record.get("stems") or {})


# --- Blender side ----------------------------------------------------------

try:
    import bpy
    from bpy.props import FloatProperty, StringProperty
except ImportError:  # imported outside Blender, e.g. by the tests
    bpy = None


def _default_output_dir() -> str:
    if bpy.data.filepath:
        return bpy.path.abspath("//acapella_stems")
    # An unsaved .blend has no folder of its own; the stems must outlive this
    # call because the new strips read them from disk.
    return os.path.join(tempfile.gettempdir(), "acapella_stems")


def separate_strip(
    scene: Any, strip: Any, stems: list[str], command: list[str], model: str, output_dir: str, timeout: float
) -> list[Any]:
    if strip is None or strip.type != "SOUND":
        raise AcapellaError("select a sound strip first")
    sound = strip.sound
    if sound is None:
        raise AcapellaError(f"strip {strip.name!r} has no sound")
    if sound.packed_file is not None:
        raise AcapellaError(f"sound of strip {strip.name!r} is packed in the .blend; unpack it first (File > External Data)")
    source = os.path.normpath(bpy.path.abspath(sound.filepath, library=sound.library))
    if not os.path.isfile(source):
        raise AcapellaError(f"sound file of strip {strip.name!r} not found: {source}")

    safe_name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in strip.name) or "strip"
    in_use = [bpy.path.abspath(s.filepath, library=s.library) for s in bpy.data.sounds if s.filepath]
    out_dir = new_run_folder(os.path.join(output_dir, safe_name), in_use)
    paths = run_separation(build_command(command, source, out_dir, stems, model), timeout)
    for stem in stems:
        path = paths.get(stem)
        if not path or not os.path.isfile(path):
            raise AcapellaError(f"acapella separate reported success but {stem} is missing at {path}")

    sequences = scene.sequence_editor.sequences_all
    occupied = [(s.channel, s.frame_final_start, s.frame_final_end) for s in sequences]
    channels = free_channels(occupied, strip.frame_final_start, strip.frame_final_end, strip.channel, len(stems))
    taken = {s.name for s in sequences}
    added = []
    for stem, channel in zip(stems, channels):
        name = strip_name(strip.name, stem, taken)
        taken.add(name)
        new = scene.sequence_editor.sequences.new_sound(
            name=name,
            filepath=paths[stem],
            channel=channel,
            frame_start=int(round(strip.frame_start)),
        )
        # The stem file is as long as the source, so the same content start and
        # the same handles give the same trim. frame_start may be fractional
        # (Blender 3.3+), which new_sound() does not take.
        new.frame_start = strip.frame_start
        new.frame_final_start = strip.frame_final_start
        new.frame_final_end = strip.frame_final_end
        for attr in ("volume", "pan", "speed_factor", "pitch", "show_waveform", "mute"):
            if hasattr(strip, attr) and hasattr(new, attr):
                try:
                    setattr(new, attr, getattr(strip, attr))
                except (AttributeError, TypeError, ValueError):
                    pass
        added.append(new)
    return added


if bpy is not None:

    class AcapellaPreferences(bpy.types.AddonPreferences):
        bl_idname = __name__

        acapella_command: StringProperty(
            name="acapella command",
            description="Full path of the acapella command, e.g. /home/me/.venv/bin/acapella, or a command line (empty: look it up on PATH)",
            default="",
        )

        def draw(self, context: Any) -> None:
            self.layout.prop(self, "acapella_command")

    class SEQUENCER_OT_acapella_separate(bpy.types.Operator):
        """Split the active sound strip into stem strips with acapella"""

        bl_idname = "sequencer.acapella_separate"
        bl_label = "Separate Sound Strip (acapella)"
        bl_options = {"REGISTER", "UNDO"}

        stems: StringProperty(name="Stems", default=",".join(STEM_NAMES))
        model: StringProperty(name="Model", default="default")
        acapella_command: StringProperty(
            name="acapella command", description="Overrides the add-on preference", default=""
        )
        output_dir: StringProperty(
            name="Output folder",
            description="Where stems are written (empty: acapella_stems next to the .blend)",
            default="",
            subtype="DIR_PATH",
        )
        timeout: FloatProperty(name="Timeout (s)", default=1800.0, min=1.0)

        @classmethod
        def poll(cls, context: Any) -> bool:
            editor = context.scene.sequence_editor if context.scene else None
            strip = editor.active_strip if editor else None
            return strip is not None and strip.type == "SOUND"

        def execute(self, context: Any) -> set[str]:
            scene = context.scene
            strip = scene.sequence_editor.active_strip
            try:
                stems = parse_stems(self.stems)
                setting = self.acapella_command
                if not setting.strip():
                    addon = context.preferences.addons.get(__name__)
                    setting = addon.preferences.acapella_command if addon else ""
                command = resolve_command(setting)
                output_dir = bpy.path.abspath(self.output_dir) if self.output_dir else _default_output_dir()
                added = separate_strip(scene, strip, stems, command, self.model, output_dir, self.timeout)
            except AcapellaError as exc:
                self.report({"ERROR"}, str(exc))
                return {"CANCELLED"}
            except Exception as exc:  # a Blender API change must not end in a traceback dialog
                self.report({"ERROR"}, f"acapella: unexpected {type(exc).__name__}: {exc}")
                return {"CANCELLED"}
            for s in scene.sequence_editor.sequences_all:
                s.select = False
            for s in added:
                s.select = True
            self.report({"INFO"}, "added " + ", ".join(s.name for s in added))
            return {"FINISHED"}

    def _menu(self: Any, context: Any) -> None:
        self.layout.separator()
        self.layout.operator(SEQUENCER_OT_acapella_separate.bl_idname)

    _classes = (AcapellaPreferences, SEQUENCER_OT_acapella_separate)

    def register() -> None:
        for cls in _classes:
            bpy.utils.register_class(cls)
        bpy.types.SEQUENCER_MT_strip.append(_menu)

    def unregister() -> None:
        bpy.types.SEQUENCER_MT_strip.remove(_menu)
        for cls in reversed(_classes):
            bpy.utils.unregister_class(cls)
