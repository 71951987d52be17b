"""Start training from an exported ONNX model instead of from scratch.

Checkpoints stay out of git, so the shipped ``.onnx`` file is the one record of
a trained network that every machine has. Its weights go back into the PyTorch
network here. The exporter folded some BatchNorm layers into the convolutions
before them; those BatchNorms get statistics measured on a batch of training
data and an affine part that undoes them, so that the network computes what
the ONNX file computes, and BatchNorm keeps working as it does in training.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from acapella.model import networks


def _eval_forward(net: nn.Module, x: torch.Tensor, hooks: list) -> None:
    """One forward pass in eval mode (train mode would move the BatchNorm statistics), then the hooks go."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)


def _convs_in_call_order(net: nn.Module, example: torch.Tensor) -> list[nn.Conv2d]:
    order: list[nn.Conv2d] = []
    _eval_forward(net, example, [m.register_forward_hook(lambda m, i, o: order.append(m))
                                 for m in net.modules() if isinstance(m, nn.Conv2d)])
    return order


def load_onnx(net: nn.Module, path: Path, example: torch.Tensor) -> tuple[list[nn.BatchNorm2d], list[str]]:
    """Copies the weights of an ONNX file made by ``acapella.model.export`` into ``net``.

    ``example`` is a network input of any size. Returns the BatchNorm layers
    that the export folded away: they are set to the identity here and must be
    given real statistics with :func:`calibrate` before training. Also returns
    the convolutions that take more input planes than in the file (a network
    given new input features): the file's weights fill the first planes and
    the new ones start at zero, and the parameters of modules the file lacks
    (``net.deep`` blocks beyond the file's, a refining ``net.head``, frequency
    blocks ``net.freq``): each
    starts so that it changes nothing. Either way the network still computes
    what the file does.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    folded_form = json.loads(meta.get("acapella", "{}")).get("form") == "folded"
    # A folded file holds the decoder and output of networks.FoldedUNet: read it into that form
    # (which shares every other module with `net`), then unfold.
    form = networks.FoldedUNet(net, fold=False) if folded_form else net
    prefix = "net."  # MaskExport wraps the network as `net`
    params = dict(form.named_parameters()) | dict(form.named_buffers())
    loaded: set[str] = set()
    grown: list[str] = []

    def put(name: str, value: np.ndarray) -> None:
        target = params[name]
        shape = tuple(target.shape)
        more_inputs = (len(shape) == 4 and value.ndim == 4 and shape[0] == value.shape[0]
                       and shape[2:] == value.shape[2:] and shape[1] > value.shape[1])
        if shape != value.shape and not more_inputs:
            raise ValueError(f"{path}: {name} has shape {value.shape}, the network wants {shape}")
        with torch.no_grad():
            target.zero_()
            target[tuple(slice(0, n) for n in value.shape)] = torch.from_numpy(np.array(value))
        if more_inputs:
            if name not in grown:
                grown.append(name)
        loaded.add(name)

    weights |= _aliases(model, weights)
    for name, value in weights.items():
        if name.startswith(prefix) and name[len(prefix):] in params:
            put(name[len(prefix):], value)
    # Frequency blocks hold no convolution and keep their names: a file without them gets them as no change.
    for i, block in enumerate(getattr(form, "freq", [])):
        names = [f"freq.{i}.{n}" for n, _ in block.named_parameters()]
        if not any(n in loaded for n in names):
            block.grow_()
            grown += names
            loaded.update(names)
    # Folded convolutions lost their names: match them to the network's by call order.
    module_names = {m: n for n, m in form.named_modules()}
    convs = _convs_in_call_order(form, example)
    nodes = [n for n in model.graph.node if n.op_type == "Conv"]
    has_head = any(n.startswith(prefix + "head.") for n in weights)
    for block in _new_modules(form, len(convs) - len(nodes), has_head):
        fresh = {m for m in block.modules() if isinstance(m, nn.Conv2d)}
        convs = [c for c in convs if c not in fresh]
        block.grow_()
        block_name = module_names[block]
        grown += [f"{block_name}.{n}" for n, _ in block.named_parameters()]
        loaded.update(f"{block_name}.{n}" for n, _ in list(block.named_parameters()) + list(block.named_buffers()))
    if len(nodes) != len(convs):
        raise ValueError(f"{path} has {len(nodes)} convolutions, the network {len(convs)}: not this network")
    for node, conv in zip(nodes, convs):
        name = module_names[conv]
        put(f"{name}.weight", weights[node.input[1]])
        if conv.bias is not None:
            put(f"{name}.bias", weights[node.input[2]] if len(node.input) > 2
                else np.zeros(conv.out_channels, np.float32))
    if folded_form:
        loaded.update(form.unfold_into(net))
        grown = [n.replace("xo.", "out.", 1) if n.startswith("xo.") else n for n in grown]
        params = dict(net.named_parameters()) | dict(net.named_buffers())

    folded = []
    for name, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d) and f"{name}.weight" not in loaded:
            with torch.no_grad():
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
            folded.append(m)
            loaded |= {f"{name}.{p}" for p in ("weight", "bias", "running_mean", "running_var")}
    missing = sorted(n for n in params if n not in loaded and not n.endswith("num_batches_tracked"))
    if missing:
        raise ValueError(f"{path} lacks weights for {', '.join(missing[:5])}: not this network")
    return folded, grown


def _aliases(model, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Weights that reach their layer through a node: initializers the exporter merged (it
    keeps one copy of equal ones, the zero biases of a newly grown block for one, and gives
    the others' names as Identity nodes), and the 8-bit weights of a quantized file
    (``acapella.model.quantize``), read back as floats."""
    out = {n.output[0]: weights[n.input[0]] for n in model.graph.node
           if n.op_type == "Identity" and n.input[0] in weights}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in weights:
            q = weights[n.input[0]].astype(np.float32)
            scale = weights[n.input[1]].astype(np.float32)
            zero = weights[n.input[2]].astype(np.float32) if len(n.input) > 2 else np.zeros_like(scale)
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            shape = [-1 if d == axis % q.ndim else 1 for d in range(q.ndim)] if scale.ndim else []
            out[n.output[0]] = (q - zero.reshape(shape)) * scale.reshape(shape)
    return out


def _new_modules(net: nn.Module, extra_convs: int, file_has_head: bool) -> list[nn.Module]:
    """The modules of ``net`` that account for ``extra_convs`` convolutions the file lacks.

    Candidates are the refining head (``net.head``; its weights keep their
    names in a file, having no BatchNorm to fold) and trailing bottleneck
    blocks (``net.deep``); each has a ``grow_`` method that makes it leave the
    network's output as it was.
    """
    def convs(m: nn.Module) -> int:
        return sum(isinstance(c, nn.Conv2d) for c in m.modules())

    found: list[nn.Module] = []
    head = getattr(net, "head", None)
    if head is not None and not file_has_head:
        found.append(head)
        extra_convs -= convs(head)
    deep = list(getattr(net, "deep", []))
    if extra_convs <= 0 or not deep:
        return found
    per = convs(deep[0])
    count = extra_convs // per
    if extra_convs % per or count > len(deep):
        return []  # the count check in load_onnx reports the mismatch
    return found + deep[len(deep) - count:]


def calibrate(net: nn.Module, folded: list[nn.BatchNorm2d], batch: torch.Tensor) -> None:
    """Gives folded BatchNorms the statistics of ``batch`` and an affine part that undoes them.

    The network's output is unchanged in eval mode, and in train mode on a
    batch with these statistics.
    """
    stats = {}
    _eval_forward(net, batch, [m.register_forward_hook(lambda m, i, o: stats.__setitem__(m, i[0].float()))
                               for m in folded])
    with torch.no_grad():
        for m in folded:
            y = stats[m]
            mean = y.mean(dim=(0, 2, 3))
            var = y.var(dim=(0, 2, 3), unbiased=False)
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.weight.copy_(torch.sqrt(var + m.eps))
            m.bias.copy_(mean)
