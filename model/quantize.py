"""Quantize an exported model's convolutions to 8-bit integers (static, per channel).

    python -m acapella.model.quantize runs/freq4/freq4.onnx model/default.onnx --data ../shared/data

The convolutions take about 70% of the engine's time in float; as 8-bit
integer convolutions (onnxruntime's QLinearConv) the network runs in a little
over half the time, for a few hundredths of a dB (MODEL_CARD.md). Activation
ranges come from the mixtures of training songs (validation songs left out),
clipped at a high percentile of their histogram so that rare peaks do not
coarsen every other value. Weights use 7 of their 8 bits (``reduce_range``),
which keeps the integer sums from saturating on CPUs without VNNI
instructions. Everything else, the frequency blocks' matrices included, stays
float. The file keeps the source's metadata, marked ``"quantized": "int8"``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from acapella.evaluate import is_validation_clip
from acapella.models import OnnxModel
from acapella.transforms import STFT

CALIBRATION_SONGS = 16
CALIBRATION_FRAMES = 288  # 6.7 s at the default STFT; a multiple of every model's frame_multiple
SEED = 0


def calibration_inputs(model: OnnxModel, data: Path, songs: int = CALIBRATION_SONGS,
                       frames: int = CALIBRATION_FRAMES, seed: int = SEED) -> list[np.ndarray]:
    """Network inputs made from the mixtures of `songs` MUSDB training songs (a fixed draw), as the engine makes them."""
    import soundfile as sf

    root = Path(data) / "musdb7-train"
    if not root.is_dir():
        raise ValueError(f"no MUSDB training songs at {root}: give --data the folder that holds musdb7-train/")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_validation_clip(p.name))
    pick = np.random.default_rng(seed).choice(len(names), min(songs, len(names)), replace=False)
    stft = STFT(model.n_fft, model.hop)
    feeds = []
    for i in sorted(pick):
        song = root / names[i]
        vocals, rate = sf.read(_stem(song, "vocals"), dtype="float32", always_2d=True)
        accompaniment, _ = sf.read(_stem(song, "accompaniment"), dtype="float32", always_2d=True)
        if rate != model.sample_rate or vocals.shape[1] != model.channels:
            raise ValueError(f"{song}: {rate} Hz, {vocals.shape[1]} channels; this model takes "
                             f"{model.sample_rate} Hz, {model.channels} channels")
        spec = stft.forward((vocals + accompaniment).T)[:, :frames]
        feeds.append(model.features(spec))
    return feeds


def _stem(song: Path, name: str) -> Path:
    found = sorted(song.glob(f"{name}.*"))
    if not found:
        raise ValueError(f"{song} has no {name}.* file")
    return found[0]


def quantize(source: Path, out: Path, data: Path) -> Path:
    """Writes the 8-bit version of the model file `source` to `out`."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    import onnx

    model = OnnxModel(source)
    src = onnx.load(str(source))
    meta = json.loads({p.key: p.value for p in src.metadata_props}["acapella"])  # OnnxModel checked it is there
    if meta.get("quantized"):
        raise ValueError(f"{source} is already quantized: give the float file the export wrote")
    feeds = calibration_inputs(model, data)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {model.input_name: x}

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Shape inference only: the symbolic pass cannot follow the dynamic frame axis through the pixel shuffles.
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(Path(tmp) / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile)
        q = onnx.load(str(Path(tmp) / "q.onnx"))
    _in_source_order(q.graph, [n.name for n in src.graph.node])
    meta["quantized"] = "int8"
    del q.metadata_props[:]
    entry = q.metadata_props.add()
    entry.key, entry.value = "acapella", json.dumps(meta)
    onnx.save(q, str(out))
    return out


def _in_source_order(graph, names: list[str]) -> None:
    """Sorts `graph`'s nodes as the source file had them, Q/DQ nodes just before their first consumer.

    The quantizer re-sorts the graph, and a warm start matches the file's
    convolutions to the network's in call order (`acapella.model.warmstart`).
    """
    import heapq

    rank = {name: i for i, name in enumerate(names)}
    nodes = list(graph.node)
    made_by = {t: i for i, n in enumerate(nodes) for t in n.output}
    users: dict[int, set[int]] = {i: set() for i in range(len(nodes))}
    needs = [set() for _ in nodes]
    for i, n in enumerate(nodes):
        for t in n.input:
            if t in made_by:
                needs[i].add(made_by[t])
                users[made_by[t]].add(i)

    def key(i: int, seen: frozenset = frozenset()) -> float:
        if nodes[i].name in rank:
            return rank[nodes[i].name]
        later = [key(j, seen | {i}) for j in users[i] if j not in seen]
        return min(later, default=float(len(names))) - 0.5

    keys = [key(i) for i in range(len(nodes))]
    ready = [(keys[i], i) for i in range(len(nodes)) if not needs[i]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(nodes[i])
        for j in sorted(users[i]):
            needs[j].discard(i)
            if not needs[j]:
                heapq.heappush(ready, (keys[j], j))
    if len(order) != len(nodes):
        raise ValueError("the quantized graph has a cycle")
    del graph.node[:]
    graph.node.extend(order)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m acapella.model.quantize", description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="a float model file written by acapella.model.export or training")
    ap.add_argument("out", type=Path, help="where to write the 8-bit model")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"),
                    help="the data folder whose musdb7-train/ songs calibrate the activation ranges")
    args = ap.parse_args(argv)
    if args.out.resolve() == args.source.resolve():
        ap.error(f"out {args.out} is the source file: write the quantized model elsewhere")
    try:
        print(quantize(args.source, args.out, args.data))
    except ValueError as exc:
        ap.error(str(exc))
    except ImportError as exc:
        ap.error(f"{exc.name or exc}: quantizing needs the training extra, pip install '.[train]'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
