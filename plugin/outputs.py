"""Where the stems of each input go, and one input's whole job: the rule the CLI and the cluster share.

    >>> job = Job(Path("album/cd1/track.flac"), root=Path("album"), relative=PurePath("cd1/track.flac"))
    >>> output_folder(job, "stems").as_posix()
    'stems/cd1/track'

An input's output folder depends only on the input itself: for a file found in a
folder named on the command line, ``OUT/<its path relative to that folder,
without the extension>/``; for a file named directly, ``OUT/<its name without the
extension>/``. Each output folder holds a sidecar record, ``acapella.json``, of
what it was made from (source path, size, modification time, model and the
options that change the audio). A later run skips an input only when that record
matches it; when the folder holds another source's stems, the input goes to
``<folder>-<8 hex digits of its record>`` instead, and is refused when that too
is taken. ``--force`` overwrites the folder in place.

`run_job` takes one `Job` to a JSON-ready record (``status`` done, skipped or
failed, its ``reason``, the ``stems`` written by name); it never raises for a bad
input, so a batch or a cluster goes on past one.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Callable, Collection, Iterable, Iterator

from acapella.stems import STEMS, parse_stems
from acapella.files import AUDIO_EXTENSIONS, FORMATS, atomic_output, check_format, escape

RECORD = "acapella.json"  # the sidecar record in each output folder


@dataclass(frozen=True)
class Job:
    """One input: the file, the folder named on the command line it was found in, its path below that folder.

    `root` is None for a file named directly; `relative` is then its name. `problem`
    says why a command-line input gives no file (a missing path, an empty folder);
    `run_job` reports such a job as failed.
    """

    source: Path
    root: Path | None
    relative: PurePath
    problem: str | None = None


@dataclass(frozen=True)
class Options:
    """What a run writes: which stems, in which format; `force` overwrites outputs in place."""

    stems: tuple[str, ...] = STEMS
    format: str = "wav"
    force: bool = False
    plot: bool = False

    def __post_init__(self):
        object.__setattr__(self, "stems", parse_stems(self.stems))
        object.__setattr__(self, "format", check_format(self.format))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {escape(exc.filename)}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_STEM_FILES = frozenset(f"{s}.{f}" for s in STEMS for f in FORMATS)


def is_output(path: Path) -> bool:
    """Whether `path` is a stem written by a run: listed in its folder's record, or (from a version
    that wrote no record) named like a stem in a folder of nothing but stems."""
    record = read_record(path.parent)
    if record is not None:
        return path.name in record.get("stems", {}).values()
    if path.name not in _STEM_FILES:
        return False
    try:
        return all(n in _STEM_FILES or n == "spectrograms.png" or n.startswith(".") for n in os.listdir(path.parent))
    except OSError:
        return False


def _found_in(folder: Path) -> list[Path]:
    """Audio files under `folder`, sorted, leaving out hidden files (a Mac's ``._song.wav``) and earlier outputs."""
    found = []
    for f in folder.rglob("*"):
        if f.name.startswith(".") or f.suffix.lower() not in AUDIO_EXTENSIONS or not f.is_file():
            continue
        if any(part.startswith(".") for part in f.relative_to(folder).parts[:-1]):
            continue
        if not is_output(f):
            found.append(f)
    if not found:
        os.listdir(folder)  # an unreadable folder says so, rather than "no audio files"
    return sorted(found)


def walk(inputs: Iterable[str | os.PathLike]) -> Iterator[Job]:
    """The jobs for the files and folders named on a command line, in order.

    Folders are searched recursively, without hidden files and the stems
    of earlier runs. A file reached twice (named under two spellings, or also found
    in a folder) gives one job. An input that gives no file gives a job with a
    `problem`.
    """
    seen: set[Path] = set()
    for raw in inputs:
        p = Path(raw)
        try:
            if p.is_dir():
                found = _found_in(p)
                if not found:
                    yield Job(p, None, PurePath(p.name), "no audio files in this folder")
                for f in found:
                    key = f.resolve()
                    if key not in seen:
                        seen.add(key)
                        yield Job(f, p, f.relative_to(p))
            elif p.exists() or p.is_symlink():
                key = p.resolve()
                if key not in seen:
                    seen.add(key)
                    yield Job(p, None, PurePath(p.name))
            else:
                yield Job(p, None, PurePath(p.name), "no such file or folder")
        except OSError as exc:
            yield Job(p, None, PurePath(p.name), _error_text(exc))


def _folder_name(name: str) -> str:
    stem = PurePath(name).stem
    # A name of dots alone (``..wav``) would name no folder, or the one above.
    return stem if stem.strip(".") else name.replace(".", "_")


def output_folder(job: Job, out_dir: str | os.PathLike) -> Path:
    """``OUT/<relative path of the input, without its extension>``: the same for the same input on every run."""
    rel = job.relative
    return Path(out_dir).joinpath(*rel.parts[:-1], _folder_name(rel.name))


def source_record(job: Job, separator, options: Options) -> dict:
    """What an output folder records of its source: path, size, modification time, model, options."""
    st = job.source.stat()
    return {"source": os.fsdecode(job.source.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "model": model_id(separator), "options": audio_options(separator)}


def model_id(separator) -> str:
    """A bundled model by name; any other by its absolute path."""
    from acapella import onnx_model as models

    path = Path(separator.model.path)
    if path.stem in models.bundled() and models.resolve(path.stem).resolve() == path.resolve():
        return path.stem
    return os.fsdecode(path.resolve())


def audio_options(separator) -> dict:
    """The separator's settings that change the stems (the chunk size and threads do not)."""
    return {"per_channel": bool(separator.per_channel), "vocal_pan": separator.vocal_pan}


def _same_source(a: dict | None, b: dict) -> bool:
    return a is not None and all(a.get(k) == b[k] for k in ("source", "size", "mtime_ns", "model", "options"))


def read_record(folder: Path) -> dict | None:
    """The record in an output folder, or None where there is none (or it cannot be read)."""
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8", errors="surrogateescape"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(folder: Path, record: dict) -> None:
    with atomic_output(folder / RECORD) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


def _holds_output(folder: Path) -> bool:
    """Whether a folder holds a record or anything named like a stem."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return False
    return any(n == RECORD or n in _STEM_FILES for n in names)


@dataclass
class Plan:
    """Where one input's stems go, and which of them to write.

    `status` is ``run`` (write `todo` into `folder`), ``skipped`` (the folder holds
    all of them, made from this very input) or ``refused`` (no folder free of other
    sources' stems); `note` says why, for the user.
    """

    folder: Path
    todo: tuple[str, ...]
    status: str
    note: str | None = None
    record: dict = field(default_factory=dict)


def distinct_folder(primary: Path, record: dict) -> Path:
    """The second choice for an input whose folder holds another source's stems: fixed by its record."""
    key = json.dumps({k: record[k] for k in ("source", "size", "mtime_ns", "model", "options")}, sort_keys=True)
    return primary.with_name(f"{primary.name}-{hashlib.sha1(key.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}")


def plan(job: Job, out_dir: str | os.PathLike, record: dict, options: Options) -> Plan:
    """Skip, write (where), or refuse: the decision for one input, from the records already on disk."""
    primary = output_folder(job, out_dir)
    names = {s: f"{s}.{options.format}" for s in options.stems}
    if options.force:
        return Plan(primary, options.stems, "run", record=record)
    for folder in (primary, distinct_folder(primary, record)):
        theirs = read_record(folder)
        if _same_source(theirs, record):
            todo = tuple(s for s in options.stems if not (folder / names[s]).is_file())
            if not todo:
                return Plan(folder, (), "skipped", f"outputs exist in {escape(folder)} (use --force to overwrite)",
                            record)
        elif _holds_output(folder):
            continue
        else:
            todo = options.stems
        note = None
        if folder != primary:
            other = read_record(primary)
            made_from = f"stems of {escape(other['source'])}" if other and "source" in other else "other stems"
            note = f"{escape(primary)} holds {made_from}; writing to {escape(folder)}"
        return Plan(folder, todo, "run", note, record)
    return Plan(primary, (), "refused", f"{escape(primary)} and {escape(distinct_folder(primary, record))} hold "
                                        "stems of other sources: use --force to overwrite, or choose another -o",
                record)


@contextlib.contextmanager
def folder_lock(folder: Path):
    """Holds an exclusive lock on an output folder, so that two processes never fill one folder at once."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _result(job: Job, status: str, reason: str | None = None, folder: Path | None = None,
            stems: dict[str, Path] | None = None, warnings: list[str] | None = None) -> dict:
    return {"input": os.fsdecode(job.source), "status": status, "reason": reason,
            "folder": os.fsdecode(folder) if folder is not None else None,
            "stems": {k: os.fsdecode(v) for k, v in (stems or {}).items()}, "warnings": list(warnings or [])}


def run_job(job: Job, out_dir: str | os.PathLike, separator, options: Options = Options(),
            progress: Callable[[int], None] | None = None, protect: Collection[Path] = frozenset()) -> dict:
    """Separates one input into its output folder, and returns its record for ``--json``.

    The record: ``input``, ``status`` (``done``, ``skipped`` or ``failed``), ``reason``
    (why it failed or was skipped, or where it went instead), ``folder``, ``stems``
    (``{name: path}`` of every requested stem that is there, by name) and
    ``warnings`` (one line each: a truncated input, a stem that clips). Resolved
    paths that must not be written (the inputs of a batch) may be given as `protect`.
    A failure is a record, never an exception; Ctrl-C still interrupts.
    """
    from acapella import files

    if job.problem:
        return _result(job, "failed", job.problem)
    warned: list[str] = []
    folder = made = None
    try:
        record = source_record(job, separator, options)
        out_dir = Path(out_dir)
        primary = output_folder(job, out_dir)
        primary.parent.mkdir(parents=True, exist_ok=True)
        choice = plan(job, out_dir, record, options)
        folder = choice.folder
        made = not folder.exists()
        folder.mkdir(exist_ok=True)
        with folder_lock(folder):
            choice = plan(job, out_dir, record, options)  # again, now that no other process can change it
            if choice.folder != folder:
                raise RuntimeError(f"another process is writing {escape(folder)}; run again when it is done")
            if choice.note:
                warned.append(choice.note)
            targets = {s: folder / f"{s}.{options.format}" for s in options.stems}
            if choice.status == "skipped":
                return _result(job, "skipped", choice.note, folder, targets)
            if choice.status == "refused":
                return _result(job, "failed", choice.note, folder)
            for s in choice.todo:
                t = targets[s]
                if t.is_dir():
                    raise IsADirectoryError(f"{escape(t)} is a folder, not a stem file: move it away or choose another -o")
                resolved = t.resolve()
                if resolved == job.source.resolve() or resolved in protect:
                    raise ValueError(f"output {escape(t)} would overwrite an input; choose another -o")
            files.sweep_temporaries(folder)
            old = read_record(folder) if not options.force else None
            kept = dict(old.get("stems", {})) if old else {}
            write_record(folder, {**record, "stems": {s: n for s, n in kept.items() if (folder / n).exists()}})
            separate_into(separator, job.source, {s: targets[s] for s in choice.todo}, options.format,
                          progress=progress, warn=warned.append)
            kept.update({s: targets[s].name for s in choice.todo})
            write_record(folder, {**record, "stems": {s: n for s, n in kept.items() if (folder / n).exists()}})
            if options.plot:
                from acapella.plot import plot_stems

                plot_stems(job.source, targets, folder / "spectrograms.png")
        return _result(job, "done", choice.note, folder, targets, warned)
    except Exception as exc:
        _clean_up(folder, made)
        return _result(job, "failed", _error_text(exc), folder, warnings=warned)
    except KeyboardInterrupt:
        _clean_up(folder, made)
        raise


def _clean_up(folder: Path | None, made: bool | None) -> None:
    """Removes an output folder that this job made and left without stems (its record and temporaries too)."""
    from acapella.files import is_temporary

    if not made or folder is None:
        return
    try:
        names = os.listdir(folder)
        if all(n == RECORD or is_temporary(n) for n in names):
            for n in names:
                (folder / n).unlink(missing_ok=True)
            folder.rmdir()
    except OSError:
        pass  # what stays is an empty folder, not worth a second error


def separate_into(separator, source: Path, targets: dict[str, Path], fmt: str,
                  progress: Callable[[int], None] | None = None, warn: Callable[[str], None] | None = None) -> None:
    """Separates `source` block by block into `targets` ``{stem: path}``, written atomically and verified.

    The file never sits whole in memory. `warn` (default: `warnings.warn`) gets
    one line for a file shorter than its header says, and one per stem that clips
    in `fmt`; `progress` the number of input frames done, as they are.
    """
    from acapella import files

    with files.Reader(source, warn=warn) as reader:
        rate, channels = reader.sample_rate, reader.channels
        pan = separator.steering_pan(reader.span, reader.frames, rate, channels)
        blocks = reader.blocks(separator.block_size(rate, channels))
        with files.AtomicWriters(targets, rate, channels, fmt, frames=reader.frames, warn=warn) as writers:
            for stems in separator.separate_blocks(blocks, rate, stems=tuple(targets), vocal_pan=pan):
                writers.write(stems)
                if progress:
                    progress(next(iter(stems.values())).shape[1])
