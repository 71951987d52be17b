"""Export a trained network to the ONNX file the engine loads.

    python -m acapella.model.export --model default --checkpoint runs/default/checkpoint.pt --out model/default.onnx

Several checkpoints are averaged parameter by parameter (a "model soup"), which
makes sense only for runs fine-tuned from one model; the model card records how
such averages measured.

The STFT settings and the network's receptive field go into the file's metadata
(key ``acapella``), so an ONNX file is all the engine needs.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from acapella.model import networks


def receptive_field(module: torch.nn.Module, channels: int, bins: int, multiple: int) -> int:
    """Frames on each side of an output frame that can change it (rounded up to `multiple`).

    A NaN frame spreads to every output that depends on it, through ReLUs and
    saturated masks alike, so this measures the structure, not the weights.
    """
    # Wide enough that a reach of a few hundred frames (seconds) cannot touch the edges.
    frames = max(64 * multiple, 1024)
    reach = 0
    with torch.no_grad():
        for c in range(frames // 2, frames // 2 + multiple):
            x = torch.rand(1, channels, frames, bins)
            x[:, :, c] = float("nan")
            hit = np.nonzero(torch.isnan(module(x)).any(dim=3).any(dim=1)[0].numpy())[0]
            reach = max(reach, int(c - hit.min()), int(hit.max() - c))
    if reach >= frames // 2:
        raise ValueError(f"the network's receptive field reaches {reach} frames or more each way: too wide to chunk exactly")
    return int(-(-reach // multiple) * multiple)


def export(name: str, net: torch.nn.Module, path: Path, fold: bool = True) -> Path:
    """Writes ``net`` to ``path`` as ONNX, with the metadata the engine reads.

    A :class:`~acapella.model.networks.MaskUNet` is written in its folded form
    (:class:`~acapella.model.networks.FoldedUNet`, the same function, faster in
    onnxruntime); ``fold=False`` writes the training form, as files made
    before that form existed are.
    """
    cfg = networks.CONFIGS[name]
    bins = cfg["n_fft"] // 2 + 1
    net.eval()
    fold = fold and isinstance(net, networks.MaskUNet)
    wrapped = networks.MaskExport(name, networks.FoldedUNet(net) if fold else net).eval()
    planes = networks.input_planes(name)
    context = receptive_field(wrapped, planes, bins, cfg["frame_multiple"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, planes, 4 * cfg["frame_multiple"], bins)
    kind = cfg["input"]
    torch.onnx.export(
        wrapped, (example,), str(path), input_names=[kind], output_names=["mask"],
        dynamic_axes={kind: {0: "batch", 2: "frames"}, "mask": {0: "batch", 2: "frames"}},
        opset_version=17, dynamo=False,
    )
    import onnx

    model = onnx.load(str(path))
    meta = dict(cfg, name=name, context_frames=context,
                parameters=int(sum(p.numel() for p in net.parameters())))
    if fold:
        meta["form"] = "folded"
    entry = model.metadata_props.add()
    entry.key, entry.value = "acapella", json.dumps(meta)
    onnx.save(model, str(path))
    net.train()
    return path


def load_weights(checkpoint: Path, weights: str = "ema", model: str | None = None) -> dict[str, torch.Tensor]:
    """The network's state dict from a training checkpoint: its moving average or its last step's.

    Raises ValueError for a file that is not a training checkpoint, or (given `model`) one
    trained with another ``--model``.
    """
    try:
        state = torch.load(checkpoint, weights_only=False)
        if not isinstance(state, dict) or "net" not in state:
            raise ValueError("it holds no network weights")
    except Exception as exc:  # unpickling raises many kinds of error on a file that is not a checkpoint
        raise ValueError(f"{checkpoint} is not a training checkpoint ({(str(exc) or type(exc).__name__).splitlines()[0]}); "
                         "give the checkpoint.pt of a training run") from None
    trained = state.get("args", {}).get("model")
    if model is not None and trained is not None and trained != model:
        raise ValueError(f"{checkpoint} was trained with --model {trained}, not --model {model}; "
                         f"export it with --model {trained}")
    if weights == "ema" and "ema" in state:
        # AveragedModel's state: the network's under "module.", plus its update count.
        return {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    return state["net"]


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The parameter-wise mean of several state dicts of one network; integer counters are taken from the first."""
    if any(s.keys() != states[0].keys() for s in states[1:]):
        raise ValueError("the checkpoints hold different networks; average only runs of one --model")
    return {k: (torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v)
            for k, v in states[0].items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m acapella.model.export", description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(networks.CONFIGS), required=True)
    ap.add_argument("--checkpoint", type=Path, required=True, nargs="+",
                    help="a run's checkpoint.pt; several are averaged weight by weight (runs fine-tuned from one model)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights", choices=["ema", "last"], default="ema",
                    help="a checkpoint of a run with --ema holds both: the moving average (default) or the last step's")
    args = ap.parse_args(argv)
    for path in args.checkpoint:
        if not path.is_file():
            ap.error(f"--checkpoint {path}: no such file; give the checkpoint.pt of a training run")
    net = networks.build(args.model)
    try:
        states = [load_weights(path, args.weights, args.model) for path in args.checkpoint]
    except ValueError as exc:
        ap.error(f"--checkpoint {exc}")
    try:
        net.load_state_dict(average_weights(states))
    except (ValueError, RuntimeError) as exc:
        # load_state_dict's first line only names the network; the next says what did not fit.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        ap.error(f"--checkpoint {' '.join(map(str, args.checkpoint))}: {' '.join(lines[:2])} "
                 f"(is --model {args.model} the network they were trained as?)")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        print(export(args.model, net, args.out))
    except OSError as exc:
        ap.error(f"--out {args.out}: cannot write there ({exc.strerror or exc}); give a path in a writable folder")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
