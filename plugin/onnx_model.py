"""The bundled ONNX models: finding them, describing them, running them.

Every model file maps a spectrogram ``(batch, planes, frames, bins)`` to a
vocals mask ``(batch, channels, frames, bins)``, and carries its STFT settings,
receptive field and input kind in its metadata (key ``acapella``): ``magnitude``
(one plane per channel) or ``spectrum`` (the channels' real parts, then their
imaginary parts). ``model/models.json`` adds what was
measured about each bundled model, and its terms, for ``acapella models``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from acapella.layout import check_count


def _model_dir() -> Path:
    return Path(str(resources.files("acapella.model")))


def catalogue() -> dict:
    """What ``model/models.json`` says of each bundled model, by name."""
    path = _model_dir() / "models.json"
    return json.loads(path.read_text()) if path.exists() else {}


def bundled() -> list[str]:
    """Names of the bundled models, the default first."""
    names = sorted(p.stem for p in _model_dir().glob("*.onnx"))
    return sorted(names, key=lambda n: n != "default")


def resolve(model: str | os.PathLike) -> Path:
    """A bundled model's name, or a path to an ``.onnx`` file, as a path."""
    text = str(model)
    if text.endswith(".onnx") or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"model file not found: {path}")
        return path
    path = _model_dir() / f"{text}.onnx"
    if not path.is_file():
        raise ValueError(f"unknown model {text!r}: choose one of {', '.join(bundled()) or '(none bundled)'}, "
                         "or give a path to an .onnx file")
    return path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    sample_rate: int
    channels: int
    n_fft: int
    hop: int
    frame_multiple: int
    context: int  # frames of receptive field on each side of an output frame
    input: str = "magnitude"  # or "spectrum": real parts, then imaginary parts


class OnnxModel:
    """One onnxruntime session and the settings stored in its file.

    ``InferenceSession.run`` is thread-safe, so one instance may serve many
    threads and streams at once.
    """

    def __init__(self, model: str | os.PathLike = "default", threads: int | None = None):
        if threads is not None:
            threads = check_count("threads", threads)
        self.path = resolve(model)
        self.threads = threads  # the engine's STFT keeps to them too
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Idle onnxruntime threads would spin through the STFT work between network calls
        # and compete with the STFT's own threads (acapella.transforms).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Planned memory patterns hold every intermediate of a call at once; the arena alone
        # reuses freed blocks, which keeps the peak of a long window lower.
        opts.enable_mem_pattern = False
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"cannot load model {self.path}: {str(exc).splitlines()[0]}") from None
        meta = self.session.get_modelmeta().custom_metadata_map.get("acapella")
        if meta is None:
            raise ValueError(f"{self.path} has no 'acapella' metadata: export it with acapella.model.export")
        m = json.loads(meta)
        self.spec = ModelSpec(m.get("name", self.path.stem), int(m["sample_rate"]), int(m["channels"]),
                              int(m["n_fft"]), int(m["hop"]), int(m["frame_multiple"]), int(m["context_frames"]),
                              m.get("input", "magnitude"))
        if self.spec.input not in ("magnitude", "spectrum"):
            raise ValueError(f"{self.path}: unknown input kind {self.spec.input!r}; update acapella to run this model")
        self.parameters = m.get("parameters")
        self.input_name = self.session.get_inputs()[0].name

    def __getattr__(self, name):
        # sample_rate, channels, n_fft, hop, frame_multiple, context; an instance not yet
        # initialised (as copy and pickle make them) has no spec and so none of these.
        spec = self.__dict__.get("spec")
        if spec is None:
            raise AttributeError(name)
        return getattr(spec, name)

    def features(self, spectrum: np.ndarray) -> np.ndarray:
        """(C, T, bins) complex spectra -> the network's float32 input, one batch item per group of the model's channels."""
        c, t, f = spectrum.shape
        groups = spectrum.reshape(c // self.spec.channels, self.spec.channels, t, f)
        if self.spec.input == "spectrum":
            batch = np.concatenate([groups.real, groups.imag], axis=1)
        else:
            batch = np.abs(groups)
        return np.ascontiguousarray(batch, dtype=np.float32)

    def mask(self, spectrum: np.ndarray) -> np.ndarray:
        """(C, T, bins) complex spectra -> (C, T, bins) vocals mask; C groups into the model's channels."""
        (out,) = self.session.run(None, {self.input_name: self.features(spectrum)})
        return out.reshape(spectrum.shape)
