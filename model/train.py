"""Train a separation network and export it to ONNX.

    python -m acapella.model.train --recipe default --corpus cache/corpus   # rebuild a shipped model (acapella.model.recipes)
    python -m acapella.model.train --model default --minutes 60 --out runs/default
    python -m acapella.model.train --model acapellabot --minutes 15 --out runs/acapellabot

Training runs for a wall-clock budget, or a number of steps with ``--steps``
(the learning rate follows a cosine over it); checkpoints to ``OUT/checkpoint.pt`` every few minutes, resumes from it
with ``--resume``, and writes the float weights ``OUT/<model>.safetensors`` (which
``--init-weights`` starts another run from) and ``OUT/<model>.onnx`` at the end. Seeds are fixed.
``--init FILE.onnx`` starts from an exported model instead (checkpoints stay
out of git, the shipped ONNX files do not), e.g. to fine-tune the default with
another loss:

    python -m acapella.model.train --model default --init model/default.onnx --loss sdr --lr 3e-4 --minutes 28 --out runs/tuned

A network that takes more input planes than the file it starts from gets the
file's weights for the old planes and zeros for the new ones; one with more
bottleneck blocks gets the file's blocks and new ones that start as the
identity (``--grown-lr`` sets the learning rate of those new weights).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from acapella import options
from acapella.model import networks, recipes
from acapella.options import positive_float, probability
from acapella.model.export import export
from acapella.transforms import STFT
from acapella.model.corpora import CORPUS_FOLDERS, MIR1K_BANDWIDTH_HZ, add_corpus, load_pools, named_amounts
from acapella.model.paths import default_data_root
from acapella.model.mixer import Augmentation, Mixer
from acapella.model.warmstart import calibrate, load_onnx

log = logging.getLogger("acapella.model.train")


def stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, C, L) -> (B, C, T, F) complex; same window and framing as acapella.transforms."""
    b, c, n = x.shape
    window = torch.from_numpy(STFT(n_fft, hop).window).to(x.device)
    s = torch.stft(x.reshape(b * c, n), n_fft, hop, window=window, center=False, return_complex=True)
    return s.reshape(b, c, s.shape[-2], s.shape[-1]).transpose(-1, -2)


def random_eq(rng: np.random.Generator, batch: int, bins: int) -> torch.Tensor:
    """Smooth random EQ curves (about +-6 dB), one per example, as spectral gains."""
    f = np.linspace(0, 1, bins)
    a = rng.uniform(-0.25, 0.25, size=(batch, 3))
    curve = np.exp(sum(a[:, k:k + 1] * np.cos(np.pi * (k + 1) * f) for k in range(3)))
    return torch.from_numpy(curve.astype(np.float32))[:, None, None, :]


def chunk_sdr_loss(err: torch.Tensor, mix: torch.Tensor, valid: torch.Tensor, chunk: int = 32,
                   floor_db: float = -30.0) -> torch.Tensor:
    """Mean over ~0.7 s chunks of the error energy relative to the mixture's, in dB.

    With the accompaniment as the residual, both stems share one error, so
    -(SDR_vocals + SDR_accompaniment) of a chunk is 2x this figure plus a
    constant: minimising it maximises both stems' SDR as BSS Eval's framewise
    median weighs them, quiet passages as much as loud ones. The floor caps
    the reward for a near-perfect chunk, so near-silent stems cannot dominate.
    """
    b, c, t, f = err.shape
    n = t // chunk

    def energy(z: torch.Tensor) -> torch.Tensor:
        e = (z.real ** 2 + z.imag ** 2) * valid
        return e[:, :, :n * chunk].reshape(b, c, n, chunk, f).sum(dim=(1, 3, 4))

    e, x = energy(err), energy(mix)
    tiny = 1e-8
    return 10 * torch.log10((e + 10 ** (floor_db / 10) * x + tiny) / (x + tiny)).mean()


def corpus_weights(text: str) -> dict[str, float]:
    """``musdb=0.8,pjs=0.1`` -> ``{"musdb": 0.8, "pjs": 0.1}``, for ``--corpora``."""
    out = named_amounts(text, [*Mixer.GROUP_WEIGHTS, *Mixer.CACHE_WEIGHTS], "corpus", "musdb=0.8,pjs=0.1")
    if not sum(dict(Mixer.GROUP_WEIGHTS, **out).values()) > 0:
        raise argparse.ArgumentTypeError(f"{text!r} leaves every corpus at weight 0: give one a positive weight")
    return out


def recipe_main(argv: list[str]) -> int:
    """``--recipe NAME``: the stages of a shipped model's recipe (`acapella.model.recipes`), run or resumed in turn."""
    ap = argparse.ArgumentParser(prog="python -m acapella.model.train --recipe", description=recipes.__doc__.split("\n")[0])
    ap.add_argument("--recipe", choices=sorted(recipes.RECIPES), required=True)
    ap.add_argument("--out", type=Path, default=None, help="where the stages train (default: runs/recipe-NAME)")
    for option in recipes.PASSED:
        ap.add_argument(option, default=None)
    args = ap.parse_args(argv)
    passed = [x for opt in recipes.PASSED if getattr(args, opt[2:]) is not None for x in (opt, getattr(args, opt[2:]))]
    return recipes.run(args.recipe, args.out or Path("runs") / f"recipe-{args.recipe}", passed, main)


def parser() -> argparse.ArgumentParser:
    """The options of one training run."""
    ap = argparse.ArgumentParser(prog="python -m acapella.model.train", description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(networks.CONFIGS), default="default")
    ap.add_argument("--minutes", type=positive_float, default=60.0, help="wall-clock training budget")
    ap.add_argument("--steps", type=options.count, default=None,
                    help="train for this many steps instead of a time budget (machine-independent)")
    ap.add_argument("--batch", type=options.count, default=8)
    ap.add_argument("--frames", type=options.count, default=256,
                    help="STFT frames per training example (a multiple of the network's frame_multiple)")
    ap.add_argument("--lr", type=positive_float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=options.count, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for the convolutions")
    Augmentation.add_arguments(ap, probability)
    ap.add_argument("--loss", choices=["l1", "sdr"], default="l1",
                    help="default model: complex L1 on the vocals, or an SDR-style log error over ~0.7 s chunks")
    ap.add_argument("--corpora", type=corpus_weights, default=None, metavar="NAME=W,...",
                    help="how often each corpus is drawn, relative (default: "
                         + ",".join(f"{k}={v}" for k, v in {**Mixer.GROUP_WEIGHTS, **Mixer.CACHE_WEIGHTS}.items())
                         + "; the last ones are groups of a --corpus cache)")
    ap.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                    help="also draw from a corpus cache built by python -m acapella.model.corpus build --out DIR "
                         "(game soundtracks, rendered backings, widened voices)")
    ap.add_argument("--data", type=Path, default=None,
                    help="the folder holding musdb7-train/, pjs-vocals/ and mir1k-train/ "
                         "(default: $ACAPELLA_DATA, else ../shared/data)")
    ap.add_argument("--cache", type=Path, default=Path("cache"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--grown-lr", type=positive_float, default=None,
                    help="with --init: learning rate for the convolutions given new input planes and for new bottleneck "
                         "blocks and heads (default: --lr); they start as no change and must grow while the rest only adjusts")
    ap.add_argument("--ema", type=float, default=None, metavar="DECAY",
                    help="also keep an exponential moving average of the weights (and BatchNorm statistics), "
                         "e.g. 0.999, and export it instead of the last step's weights")
    ap.add_argument("--init-weights", type=Path, default=None, metavar="FILE.safetensors",
                    help="start from the float weights a run wrote (OUT/MODEL.safetensors) of the same network")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from the weights of an exported ONNX model of the same network (not with a resumed checkpoint)")
    return ap


def parse(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace, dict | None]:
    """The run's options, checked before anything is written, and the checkpoint ``--resume`` continues."""
    ap = parser()
    args = ap.parse_args(argv)
    if args.ema is not None and not 0.0 < args.ema < 1.0:
        ap.error(f"--ema {args.ema}: the decay must lie between 0 and 1, e.g. 0.999")
    if not args.semitones > 0:
        ap.error(f"--semitones {args.semitones}: the largest shift must be above 0, e.g. 2")
    if args.corpus is not None and not (args.corpus / "items").is_dir():
        ap.error(f"--corpus {args.corpus}: not a corpus cache (no items/ folder); "
                 f"build one with: python -m acapella.model.corpus build --out {args.corpus}")
    if args.init_weights and not args.init_weights.is_file():
        ap.error(f"--init-weights {args.init_weights}: no such file; give the MODEL.safetensors a training run wrote")
    if args.init and args.init_weights:
        ap.error("--init and --init-weights: give one starting point")
    if args.init and not args.init.is_file():
        ap.error(f"--init {args.init}: no such file; give an ONNX file exported by acapella.model.export")
    cfg = networks.CONFIGS[args.model]
    if args.frames % cfg["frame_multiple"]:
        ap.error(f"--frames {args.frames}: must be a positive multiple of {cfg['frame_multiple']} "
                 f"(the frame multiple of --model {args.model}), e.g. {8 * cfg['frame_multiple']}")
    weights = dict(Mixer.GROUP_WEIGHTS, **Mixer.CACHE_WEIGHTS, **(args.corpora or {}))
    if args.data is None:
        args.data = default_data_root()
        if not args.data.is_dir():
            ap.error(f"no data folder: {args.data} is not there (it is looked for beside the repository the command "
                     "runs in); give --data or set $ACAPELLA_DATA to the folder that holds musdb7-train/")
    if not args.data.is_dir():
        ap.error(f"--data {args.data}: no such folder; give the folder that holds musdb7-train/, pjs-vocals/ and mir1k-train/")
    for corpus, folder in CORPUS_FOLDERS.items():
        if weights[corpus] > 0 and not (args.data / folder).is_dir():
            ap.error(f"--data {args.data}: no {folder}/ folder, which the {corpus} corpus (weight {weights[corpus]}) "
                     f"is read from; give the data root that holds it, or leave the corpus out with --corpora {corpus}=0")

    ckpt = args.out / "checkpoint.pt"
    state = None
    if args.resume:
        if not ckpt.is_file():
            ap.error(f"--resume: no checkpoint at {ckpt}; check --out, or leave out --resume to start a new run")
        try:
            state = torch.load(ckpt, weights_only=False)
            if not isinstance(state, dict) or "net" not in state:
                raise ValueError("it holds no network weights")
        except Exception as exc:  # unpickling raises many kinds of error on a file that is not a checkpoint
            ap.error(f"--resume: {ckpt} is not a training checkpoint ({(str(exc) or type(exc).__name__).splitlines()[0]}); "
                     "give the --out of a training run")
        trained = state.get("args", {}).get("model", args.model)
        if trained != args.model:
            ap.error(f"--resume: {ckpt} was trained with --model {trained}, not --model {args.model}; "
                     f"resume it with --model {trained} or give another --out")
    elif args.init:
        import onnx

        try:
            onnx.load(str(args.init), load_external_data=False)
        except Exception as exc:  # protobuf's DecodeError, among others, on a file that is not ONNX
            ap.error(f"--init {args.init}: not an ONNX file ({type(exc).__name__}); "
                     "give an ONNX file exported by acapella.model.export")

    return ap, args, state


def load_data(ap: argparse.ArgumentParser, args: argparse.Namespace):
    """The clips the run draws from (`acapella.model.corpora`), and the hours of each corpus-cache group."""
    cfg = networks.CONFIGS[args.model]
    weights = dict(Mixer.GROUP_WEIGHTS, **Mixer.CACHE_WEIGHTS, **(args.corpora or {}))
    pools = load_pools(args.data, cfg["sample_rate"], cfg["channels"], cache_dir=args.cache)
    corpus_hours = {}
    if args.corpus is not None:
        try:
            corpus_hours = add_corpus(pools, args.corpus, cfg["sample_rate"], cfg["channels"])
        except ValueError as exc:
            ap.error(f"--corpus: {exc}")
    for kind in ("vocals", "accompaniment"):
        # A corpus of weight 0 still loads, but cannot be drawn: some other corpus must give each stem.
        if not any(weights.get(g, 1.0) > 0 for g in getattr(pools, kind).groups):
            ap.error(f"--data {args.data}: no {kind.removesuffix('s')} clips to train on from a corpus of positive weight "
                     f"(weights {','.join(f'{k}={v:g}' for k, v in weights.items())}); "
                     "give a data root with training songs in it")
    return pools, corpus_hours


@contextlib.contextmanager
def logging_to(path: Path):
    """The run's log lines to ``path`` (appended, so a resumed run continues it) and to standard output."""
    log.setLevel(logging.INFO)
    log.propagate = False
    form = logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S")
    handlers = [logging.FileHandler(path, encoding="utf-8"), logging.StreamHandler(sys.stdout)]
    for h in handlers:
        h.setFormatter(form)
        log.addHandler(h)
    try:
        yield
    finally:
        for h in handlers:
            log.removeHandler(h)
            h.close()


class Run:
    """One training run's network, optimiser, weight average and random streams, and how to checkpoint them."""

    def __init__(self, ap: argparse.ArgumentParser, args: argparse.Namespace, mixer: Mixer, state: dict | None):
        self.args, self.mixer = args, mixer
        self.cfg = networks.CONFIGS[args.model]
        self.bins = self.cfg["n_fft"] // 2 + 1
        self.eq_rng = np.random.default_rng(args.seed + 1)
        # channels_last: oneDNN's fast path for these convolutions on the CPU.
        self.net = net = networks.build(args.model).to(memory_format=torch.channels_last)
        self.step, self.elapsed, self.grown = 0, 0.0, []
        if state:
            self.grown = state.get("grown", [])
        elif args.init_weights:
            try:
                net.load_state_dict(load_file(str(args.init_weights)))
            except Exception as exc:  # safetensors' own errors and load_state_dict's RuntimeError
                ap.error(f"--init-weights {args.init_weights}: not float weights of --model {args.model} "
                         f"({(str(exc) or type(exc).__name__).splitlines()[0]})")
            log.info(f"started from {args.init_weights}")
        elif args.init:
            self.start_from_onnx(ap)
        # Per-group rates: a grown convolution's new planes start at zero, and at the base
        # rate Adam would move them too slowly to matter before the schedule ends.
        new = [p for n, p in net.named_parameters() if n in self.grown]
        groups = [{"params": [p for p in net.parameters() if not any(p is q for q in new)], "scale": 1.0}]
        if new:
            groups.append({"params": new, "scale": (args.grown_lr or args.lr) / args.lr})
        self.opt = torch.optim.Adam(groups, lr=args.lr)
        # The average smooths the step-to-step wander of a small-data fine-tune, which
        # moves validation figures by tenths of a dB between checkpoints minutes apart.
        self.ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(args.ema), use_buffers=True) if args.ema else None
        if state:
            self.restore(ap, state)

    def net_input(self, spec: torch.Tensor) -> torch.Tensor:
        """What the exported network computes from the engine's input, for a complex spectrogram."""
        return networks.net_input(self.args.model, networks.onnx_input(self.args.model, spec))

    def start_from_onnx(self, ap: argparse.ArgumentParser) -> None:
        args, cfg = self.args, self.cfg
        try:
            example = self.net_input(torch.ones(1, cfg["channels"], 4 * cfg["frame_multiple"], self.bins,
                                                dtype=torch.complex64))
            folded, self.grown = load_onnx(self.net, args.init, example)
        except ValueError as e:
            ap.error(f"--init: {e} (--model {args.model})")
        v, a, _ = self.mixer.batch(args.batch)
        with torch.no_grad():
            calibrate(self.net, folded, self.net_input(stft(torch.from_numpy(v + a), cfg["n_fft"], cfg["hop"])))
        layers = sorted({n.rsplit(".", 1)[0] for n in self.grown})
        log.info(f"started from {args.init}" + (f"; grown, starting as no change (new input planes at zero weight, new blocks and heads zeroed at their last layer): "
                                                f"{', '.join(layers)}" if self.grown else ""))

    def restore(self, ap: argparse.ArgumentParser, state: dict) -> None:
        args = self.args
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        if self.ema is not None:
            if "ema" not in state:
                ap.error(f"--ema: {args.out / 'checkpoint.pt'} was trained without --ema; resume it without --ema or start a new --out")
            self.ema.load_state_dict(state["ema"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        if "rng" in state:
            # Every random stream goes on where it stopped, so a resumed run draws what the
            # uninterrupted one would have, and ends on the same weights.
            self.mixer.rng.bit_generator.state = state["rng"]["mixer"]
            self.eq_rng.bit_generator.state = state["rng"]["eq"]
            torch.set_rng_state(state["rng"]["torch"])
        else:  # a checkpoint from before the streams were saved: a fresh stream, as then
            self.mixer.rng = np.random.default_rng(args.seed + self.step)
        log.info(f"resumed at step {self.step}, {self.elapsed / 60:.1f} min")

    def checkpoint(self) -> None:
        args = self.args
        saved = {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "step": self.step, "elapsed": self.elapsed,
                 "grown": self.grown,
                 "rng": {"mixer": self.mixer.rng.bit_generator.state, "eq": self.eq_rng.bit_generator.state,
                         "torch": torch.get_rng_state()},
                 "args": vars(args) | {"data": str(args.data), "cache": str(args.cache), "out": str(args.out),
                                       "corpus": args.corpus and str(args.corpus),
                                       "init_weights": args.init_weights and str(args.init_weights),
                                       "init": args.init and str(args.init)}}
        if self.ema is not None:
            saved["ema"] = self.ema.state_dict()
        # Written aside and renamed: a run stopped mid-save keeps its previous checkpoint.
        ckpt = args.out / "checkpoint.pt"
        torch.save(saved, ckpt.with_suffix(".pt.partial"))
        ckpt.with_suffix(".pt.partial").replace(ckpt)

    def progress(self) -> float:
        return self.step / self.args.steps if self.args.steps else self.elapsed / (self.args.minutes * 60)

    def train_step(self, lr: float) -> float:
        """One batch: draw it, mask the mixture, take the loss, update; returns the loss."""
        args, cfg, bins, net = self.args, self.cfg, self.bins, self.net
        n_fft, hop, ch = cfg["n_fft"], cfg["hop"], cfg["channels"]
        for g in self.opt.param_groups:
            g["lr"] = lr * g.get("scale", 1.0)  # checkpoints from before per-group rates have none
        v, a, limited = self.mixer.batch(args.batch)
        with torch.no_grad():
            V = stft(torch.from_numpy(v), n_fft, hop)
            A = stft(torch.from_numpy(a), n_fft, hop)
            eq = random_eq(self.eq_rng, args.batch, bins)
            V, A = V * eq, A * random_eq(self.eq_rng, args.batch, bins)
            X = V + A
            valid = torch.ones(args.batch, 1, 1, bins)
            cutoff = int(MIR1K_BANDWIDTH_HZ / (cfg["sample_rate"] / 2) * (bins - 1))
            valid[torch.from_numpy(limited), ..., cutoff:] = 0.0
        mag = X.abs()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            pred = net(self.net_input(X).contiguous(memory_format=torch.channels_last)).float()
        if networks.NETWORKS[args.model].target == "mask":
            mask = torch.cat([pred, pred[..., -1:]], dim=-1)
            if args.loss == "sdr":
                loss = chunk_sdr_loss(mask * X - V, X, valid)
            else:
                # Complex L1 on the vocals; with the accompaniment as the residual its error is
                # the same signal, so this one term serves both stems.
                err = torch.view_as_real(mask * X - V).abs().sum(-1) * valid
                norm = (mag * valid).mean(dim=(1, 2, 3), keepdim=True) + 1e-4
                loss = (err / norm).sum() / (valid.sum() * ch * args.frames)
        else:
            pad = (-bins) % 4
            y = torch.nn.functional.pad(torch.log1p(V.abs()) * valid, (0, pad))
            vmask = torch.nn.functional.pad(valid.expand_as(mag), (0, pad))
            loss = (((pred - y) ** 2) * vmask).sum() / vmask.sum()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.ema is not None:
            self.ema.update_parameters(net)
        return loss.item()

    def loop(self) -> None:
        """Steps until the budget is spent, on a cosine learning rate after 50 warm-up steps; checkpoints every 3 minutes."""
        args = self.args
        start = time.time() - self.elapsed
        last_ckpt, losses = time.time(), []
        self.net.train()
        while self.progress() < 1.0:
            lr = args.lr * min(1.0, (self.step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * self.progress()))
            losses.append(self.train_step(lr))
            self.step += 1
            self.elapsed = time.time() - start
            if self.step % 20 == 0:
                log.info(f"step {self.step} loss {np.mean(losses[-20:]):.4f} lr {lr:.2e} {self.elapsed / 60:.1f} min")
            if time.time() - last_ckpt > 180 or self.progress() >= 1.0:
                self.checkpoint()
                last_ckpt = time.time()

    def finish(self, info: dict) -> None:
        """Writes the float weights, the ONNX file and ``train.json``."""
        args = self.args
        final = self.ema.module if self.ema is not None else self.net
        # The float weights, for fine-tunes and for the repository beside a shipped ONNX file.
        save_file({k: v.detach().contiguous() for k, v in final.state_dict().items()},
                  str(args.out / f"{args.model}.safetensors"))
        onnx_path = export(args.model, final, args.out / f"{args.model}.onnx")
        info = {"model": args.model, "steps": self.step, "minutes": round(self.elapsed / 60, 1),
                "parameters": sum(p.numel() for p in self.net.parameters()), "seed": args.seed, **info}
        (args.out / "train.json").write_text(json.dumps(info, indent=2))
        log.info(f"done: {self.step} steps in {self.elapsed / 60:.1f} min, exported {onnx_path}")


def main(argv: list[str] | None = None) -> int:
    if any(a == "--recipe" or a.startswith("--recipe=") for a in (sys.argv[1:] if argv is None else argv)):
        return recipe_main(sys.argv[1:] if argv is None else argv)
    ap, args, state = parse(argv)
    t0 = time.time()
    pools, corpus_hours = load_data(ap, args)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cfg = networks.CONFIGS[args.model]
    length = (args.frames - 1) * cfg["hop"] + cfg["n_fft"]
    args.out.mkdir(parents=True, exist_ok=True)
    with logging_to(args.out / "train.log"):
        for line in pools.skipped:
            log.info(f"warning: {line}")
        log.info(f"loaded {len(pools.vocals.clips)} vocal and {len(pools.accompaniment.clips)} accompaniment clips "
                 f"in {time.time() - t0:.0f}s; command: {' '.join(sys.argv)}")
        if corpus_hours:
            log.info(f"corpus {args.corpus}: " + ", ".join(f"{g} {h:.2f} h" for g, h in sorted(corpus_hours.items())))
        augment = Augmentation.from_args(args)
        mixer = Mixer(pools, length, cfg["channels"], seed=args.seed, augment=augment, weights=args.corpora,
                      sample_rate=cfg["sample_rate"])
        run = Run(ap, args, mixer, state)
        log.info(f"{args.model}: {sum(p.numel() for p in run.net.parameters()):,} parameters, "
                 f"{args.frames} frames x batch {args.batch}")
        run.loop()
        run.finish({"augmentation": augment.as_dict(),
                    "corpus": str(args.corpus) if args.corpus else None,
                    "corpus_hours": {g: round(h, 3) for g, h in corpus_hours.items()},
                    "init_weights": str(args.init_weights) if args.init_weights else None,
                    "command": "python -m acapella.model.train " + " ".join(argv if argv is not None else sys.argv[1:])})
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
