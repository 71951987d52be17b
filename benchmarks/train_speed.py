"""Training throughput of candidate networks on this machine's CPU, as steps per minute.

    python benchmarks/train_speed.py [--models freq4,bands48x4,bands64x6] [--batch 16] [--frames 256]
                                     [--runs 5] [--threads 2] [--bf16]

One step is what ``acapella.model.train`` does per batch: the network's input
from a complex spectrogram, forward, the chunked SDR loss, backward and an Adam
update. The steps of all rows are taken in turn, so each sees the same drift of
a shared machine; the table gives medians, and each row's time as a multiple of
the first row's.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from acapella.model import networks
from acapella.model.train import chunk_sdr_loss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/train_speed.py", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="freq4,bands48x4,bands64x6,bands96x8",
                    help="comma-separated network names (acapella.model.networks.NETWORKS)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5, help="timed steps per network (after one untimed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast, as train --bf16")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for name in names:
        if name not in networks.NETWORKS or networks.NETWORKS[name].target != "mask":
            ap.error(f"--models: {name!r} is not a mask network; choose from "
                     + ", ".join(n for n, v in networks.NETWORKS.items() if v.target == "mask"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = []
    for name in names:
        spec = networks.NETWORKS[name]
        bins = spec.n_fft // 2 + 1
        net = networks.build(name).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        x = torch.randn(args.batch, spec.channels, args.frames, bins, dtype=torch.complex64)
        v = 0.5 * x

        def step(name=name, net=net, opt=opt, x=x, v=v):
            inp = networks.net_input(name, networks.onnx_input(name, x)).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                pred = net(inp).float()
            mask = torch.cat([pred, pred[..., -1:]], dim=-1)
            loss = chunk_sdr_loss(mask * x - v, x, torch.ones(1, 1, 1, x.shape[-1]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        cases.append((name, sum(p.numel() for p in net.parameters()), step))
    times = [[] for _ in cases]
    for _ in range(args.runs):
        for (_, _, step), out in zip(cases, times):
            t = time.perf_counter()
            step()
            out.append(time.perf_counter() - t)
    medians = [statistics.median(t) for t in times]
    print(f"batch {args.batch} x {args.frames} frames, {args.threads} threads, bf16 {'on' if args.bf16 else 'off'}, "
          f"median of {args.runs} steps")
    print(f"{'network':<12} {'parameters':>11} {'s/step':>8} {'steps/min':>10} {'x first':>8}")
    for (name, params, _), m in zip(cases, medians):
        print(f"{name:<12} {params:>11,} {m:>8.2f} {60 / m:>10.1f} {m / medians[0]:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
