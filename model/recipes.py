"""The recipe of each shipped model: the training stages that rebuild it from scratch.

    python -m acapella.model.train --recipe default --corpus cache/corpus --out runs/recipe-default

A recipe is a list of stages; each is one ``acapella.model.train`` run with
the options given here, in ``OUT/STAGE/``, started from the float weights the
stage before it wrote (``--init-weights``). A stage with a ``train.json`` is
finished and skipped; one with a checkpoint resumes from it, so the command
can be run again after an interruption, across sessions, until it is done.
Stages count steps, not minutes, so a recipe gives the same model on any
machine. The experiments that chose these settings are in docs/experiments.md.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

# Options of every stage: the loss, the weight average and the mixing and augmentation
# of the training examples, as the shipped models before these recipes were trained.
COMMON = ("--loss", "sdr", "--ema", "0.999", "--bf16", "--frames", "256",
          "--effects", "0.3", "--mono", "0.1", "--paired", "0.3", "--varispeed", "0.6", "--layers", "0.3",
          "--quiet", "0.15", "--degrade", "0.2")


@dataclass(frozen=True)
class Stage:
    name: str
    options: tuple[str, ...]


RECIPES: dict[str, tuple[Stage, ...]] = {
    # The U-Net of the shipped default, with its input level-normalised, from scratch on the corpus.
    "fast": (Stage("main", ("--model", "freq4norm", "--lr", "1e-3", "--batch", "16", "--steps", "12000",
                            "--seed", "5101") + COMMON),),
    # The band-split network, from scratch on the corpus.
    "default": (Stage("main", ("--model", "bands64x6", "--lr", "1e-3", "--batch", "8", "--steps", "16000",
                               "--seed", "5201") + COMMON),),
}

# Options a user may give beside --recipe: where things are and how many threads, nothing that changes the model.
PASSED = ("--data", "--corpus", "--cache", "--threads")


def stage_argv(recipe: str, out: Path, passed: list[str]) -> list[tuple[Stage, list[str] | None]]:
    """Each stage of ``recipe`` with the train arguments that run (or resume) it, or None when it is done."""
    stages, plan, previous = RECIPES[recipe], [], None
    for stage in stages:
        folder = out / stage.name
        argv = [*stage.options, *passed, "--out", str(folder)]
        if (folder / "train.json").is_file():
            plan.append((stage, None))
        else:
            if (folder / "checkpoint.pt").is_file():
                argv.append("--resume")
            elif previous is not None:
                argv += ["--init-weights", str(previous)]
            plan.append((stage, argv))
        model = stage.options[stage.options.index("--model") + 1]
        previous = folder / f"{model}.safetensors"
    return plan


def run(recipe: str, out: Path, passed: list[str], train) -> int:
    """Runs the stages of ``recipe`` not yet done with ``train(argv)``; prints the totals when all are."""
    for stage, argv in stage_argv(recipe, out, passed):
        if argv is None:
            print(f"recipe {recipe}: stage {stage.name} is done ({out / stage.name / 'train.json'})", flush=True)
            continue
        print(f"recipe {recipe}: stage {stage.name}: python -m acapella.model.train {' '.join(argv)}", flush=True)
        code = train(argv)
        if code:
            return code
    done = [json.loads((out / s.name / "train.json").read_text()) for s in RECIPES[recipe]]
    steps, minutes = sum(d["steps"] for d in done), sum(d["minutes"] for d in done)
    last = out / RECIPES[recipe][-1].name
    print(f"recipe {recipe}: done, {steps} steps in {minutes:.1f} min of training; "
          f"float weights and ONNX file in {last}", file=sys.stdout)
    return 0
