"""Quantize an exported model's convolutions to 8-bit integers (static, per channel).

    python -m acapella.model.quantize runs/musdb/freq4.onnx model/default.onnx --data ../shared/data --keep-float down.0,down.1

The convolutions take about 70% of the engine's time in float; as 8-bit
integer convolutions (onnxruntime's QLinearConv) the network runs in a little
over half the time, for a few hundredths of a dB (docs/experiments.md). Activation
ranges come from the mixtures of training songs (validation songs left out),
clipped at a high percentile of their histogram so that rare peaks do not
coarsen every other value. Weights use 7 of their 8 bits (``reduce_range``),
which keeps the integer sums from saturating on CPUs without VNNI
instructions. Everything else, the frequency blocks' matrices included, stays
float, and so do the convolutions of the layers named in ``--keep-float``
(the first layers, which are cheap in float and whose rounding costs the most
quality). The file keeps the source's metadata, marked ``"quantized": "int8"``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from acapella.evaluate import stem_file
from acapella.model.validation import is_validation_clip
from acapella.onnx_model import OnnxModel
from acapella.transforms import STFT

CALIBRATION_FRAMES = 288  # 6.7 s at the default STFT; a multiple of every model's frame_multiple
SEED = 0
CORPORA = {"musdb": "musdb7-train", "mir1k": "mir1k-train"}  # name -> folder under --data
DEFAULT_CALIBRATION = {"musdb": 16}


def calibration_inputs(model: OnnxModel, data: Path, counts: dict[str, int] | None = None,
                       frames: int = CALIBRATION_FRAMES, seed: int = SEED) -> list[np.ndarray]:
    """Network inputs made from training mixtures, as the engine makes them.

    `counts` says how many clips to draw (a fixed draw per corpus) from the
    MUSDB training songs (``musdb``) and the MIR-1K training clips (``mir1k``:
    16 kHz mono, so resampled and doubled to the model's channels as the
    engine does); validation songs and singers are left out.
    """
    from acapella.model.corpora import load_clip

    stft = STFT(model.n_fft, model.hop)
    feeds = []
    for corpus, count in (counts or DEFAULT_CALIBRATION).items():
        root = Path(data) / CORPORA[corpus]
        if not root.is_dir():
            raise ValueError(f"no {corpus} training clips at {root}: give --data the folder that holds {root.name}/")
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_validation_clip(p.name))
        rng = np.random.default_rng(seed)
        if corpus == "musdb":
            order = sorted(rng.choice(len(names), min(count, len(names)), replace=False))
        else:
            order = rng.permutation(len(names))  # walked until `count` clips long enough for `frames` are found
        picked = 0
        for i in order:
            song = root / names[i]
            mix = load_clip(stem_file(song, "vocals"), model.sample_rate, model.channels)
            mix = mix + load_clip(stem_file(song, "accompaniment"), model.sample_rate, model.channels)
            spec = stft.forward(np.repeat(mix, model.channels // mix.shape[0], axis=0))
            if spec.shape[1] < frames:
                continue
            feeds.append(model.features(spec[:, :frames]))
            picked += 1
            if picked == count:
                break
        if picked < count:
            # Validation songs and clips shorter than `frames` are passed over, so a small or
            # unusual data folder can give fewer clips than asked: say so rather than quietly
            # calibrating on less.
            print(f"warning: calibrating on {picked} {corpus} clip(s), not the {count} asked: {root} holds {len(names)} "
                  f"training songs or clips (validation ones left out), and those shorter than {frames} frames "
                  "are passed over", file=sys.stderr)
    if not feeds:
        raise ValueError(f"no calibration clip of at least {frames} frames among the training songs under {data} "
                         f"({', '.join(CORPORA[c] for c in (counts or DEFAULT_CALIBRATION))}): give --data a folder "
                         "with longer training songs")
    return feeds


def parse_calibration(text: str) -> dict[str, int]:
    """``"musdb=16,mir1k=16"`` -> ``{"musdb": 16, "mir1k": 16}``."""
    counts = {}
    for part in text.split(","):
        name, _, n = part.partition("=")
        if name not in CORPORA or not n.isdigit() or int(n) < 1:
            raise ValueError(f"calibration entry {part!r}: write NAME=COUNT with NAME one of {', '.join(CORPORA)}")
        counts[name] = int(n)
    return counts


def quantize(source: Path, out: Path, data: Path, calibration: dict[str, int] | None = None,
             keep_float: tuple[str, ...] = ()) -> Path:
    """Writes the 8-bit version of the model file `source` to `out`.

    `keep_float` names network layers (``"down.1"``) whose convolutions stay float.
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    import onnx

    model = OnnxModel(source)
    src = onnx.load(str(source))
    meta = json.loads({p.key: p.value for p in src.metadata_props}["acapella"])  # OnnxModel checked it is there
    if meta.get("quantized"):
        raise ValueError(f"{source} is already quantized: give the float file the export wrote")
    convs = [n.name for n in src.graph.node if n.op_type == "Conv"]
    excluded = []
    for layer in keep_float:
        found = [c for c in convs if f"/{layer}/" in c]
        if not found:
            layers = dict.fromkeys(c.split("/")[2] for c in convs if c.count("/") > 2)
            raise ValueError(f"no convolution of layer {layer!r} in {source}: its layers are {', '.join(layers)}")
        excluded += found
    feeds = calibration_inputs(model, data, calibration)

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
                        calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=excluded)
        q = onnx.load(str(Path(tmp) / "q.onnx"))
    _in_source_order(q.graph, [n.name for n in src.graph.node])
    meta["quantized"] = "int8"
    if excluded:
        meta["float_layers"] = list(keep_float)
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
    ap.add_argument("--data", type=Path, default=None,
                    help="the data folder whose training clips calibrate the activation ranges "
                         "(default: $ACAPELLA_DATA, else ../shared/data, as for training)")
    default = ",".join(f"{k}={n}" for k, n in DEFAULT_CALIBRATION.items())
    ap.add_argument("--calibration", default=default, metavar="NAME=COUNT,...",
                    help=f"clips per corpus ({', '.join(CORPORA)}) to calibrate on (default {default})")
    ap.add_argument("--keep-float", default="", metavar="LAYER,...",
                    help="layers whose convolutions stay float, e.g. down.0,down.1 (default none)")
    args = ap.parse_args(argv)
    if args.data is None:
        from acapella.model.paths import default_data_root

        args.data = default_data_root()
    if args.out.resolve() == args.source.resolve():
        ap.error(f"out {args.out} is the source file: write the quantized model elsewhere")
    try:
        print(quantize(args.source, args.out, args.data, parse_calibration(args.calibration),
                       tuple(filter(None, args.keep_float.split(",")))))
    except ValueError as exc:
        ap.error(str(exc))
    except ImportError as exc:
        ap.error(f"{exc.name or exc}: quantizing needs the training extra, pip install '.[train]'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
