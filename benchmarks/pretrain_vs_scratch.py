"""Does Data2vec 2.0 pretraining help? Finetuning from a pretrained encoder vs from scratch.

    .venv/bin/python benchmarks/pretrain_vs_scratch.py [--workdir DIR] [--labelled N] [--unlabelled N]
        [--pretrain-steps P] [--finetune-steps F] [--reuse]

On synthetic fingerspelling corpora (`signpipe.data.synth`) at smoke scale:
1. a labelled corpus (train/validation split) and an extra corpus from another seed whose labels
   are never used, both preprocessed into feature shards (y scale: the generator's planted one;
   estimating it is another benchmark's subject);
2. `P` steps of Data2vec 2.0 pretraining (the `smoke` preset) on every sequence of both corpora,
   train + validation + extra, as the seed pretrained on all of its data (no labels are read);
3. CTC finetuning (the `smoke` preset) for the same `F` steps twice, on the labelled train split
   only, once from fresh weights and once with the student's encoder (`init_from`); same seed,
   same batches, same head initialization, the only difference is the encoder's starting point.

Prints the pretraining loss at the start and end of its curve, and for both finetuning runs the
validation score (normalized Levenshtein, EMA weights, greedy decoding) and CTC loss at the end
and at every evaluation, with the time of every phase. `--reuse` keeps corpora and shards of an
earlier run in the same workdir (runs themselves always start afresh).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

from signpipe.data.synth import generate_fingerspelling, planted_y_scale
from signpipe.fingerspelling.preprocess import preprocess
from signpipe.fingerspelling.shards import MANIFEST
from signpipe.fingerspelling import finetune, pretrain
from signpipe.fingerspelling.config import resolve_config
from signpipe.train.reporting import read_metrics


def feature_shards(root: Path, name: str, n_sequences: int, seed: int, validation_fraction: float, reuse: bool) -> Path:
    """A synthetic corpus and its shards under `root` (kept when `reuse` finds them complete)."""
    corpus, shards = root / f"{name}-corpus", root / f"{name}-shards"
    if reuse and (shards / MANIFEST).is_file():
        return shards
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(shards, ignore_errors=True)
    generate_fingerspelling(corpus, n_sequences, seed)
    preprocess(corpus, shards, y_scale=planted_y_scale(corpus), validation_fraction=validation_fraction)
    return shards


def timed(label: str, function, *args):
    started = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - started
    print(f"[{label}: {seconds:.0f} s]", flush=True)
    return result, seconds


def evaluations(workdir: Path) -> list[tuple[int, float, float]]:
    """(step, validation score, validation loss) of every evaluation of a finetuning run."""
    return [
        (r["step"], r["validation/score"], r["validation/loss"]) for r in read_metrics(workdir) if "validation/score" in r
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory, removed at the end")
    parser.add_argument("--labelled", type=int, default=400, help="sequences of the labelled corpus")
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--unlabelled", type=int, default=400, help="sequences of the extra corpus (labels unused)")
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="reuse corpora and shards already in --workdir")
    args = parser.parse_args()

    root = args.workdir or Path(tempfile.mkdtemp(prefix="pretrain_vs_scratch-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        (labelled, extra), data_seconds = timed(
            "corpora + shards",
            lambda: (
                feature_shards(root, "labelled", args.labelled, 1, args.validation_fraction, args.reuse),
                feature_shards(root, "extra", args.unlabelled, 2, 0.0, args.reuse),
            ),
        )
        for run in ("pretrain", "finetune-scratch", "finetune-pretrained"):
            shutil.rmtree(root / run, ignore_errors=True)

        pretrain_config = resolve_config(
            "pretrain",
            "smoke",
            [
                f"total_steps={args.pretrain_steps}",
                f"teacher_decay_steps={args.pretrain_steps}",
                f"warmup_steps={max(1, args.pretrain_steps // 10)}",
                f"checkpoint_every={args.pretrain_steps}",
            ],
        )
        pretrain_config = dataclasses.replace(pretrain_config, data_dir=f"{labelled},{extra}")
        pretrained, pretrain_seconds = timed("pretrain", pretrain.train_and_evaluate, pretrain_config, root / "pretrain")

        finetune_config = resolve_config(
            "finetune",
            "smoke",
            [
                f"total_steps={args.finetune_steps}",
                f"warmup_steps={min(60, args.finetune_steps // 5)}",
                f"eval_every={args.eval_every}",
                f"checkpoint_every={args.finetune_steps}",
            ],
        )
        finetune_config = dataclasses.replace(finetune_config, data_dir=str(labelled))
        scratch, scratch_seconds = timed(
            "finetune from scratch", finetune.train_and_evaluate, finetune_config, root / "finetune-scratch"
        )
        warm, warm_seconds = timed(
            "finetune from pretrained",
            finetune.train_and_evaluate,
            dataclasses.replace(finetune_config, init_from=str(root / "pretrain")),
            root / "finetune-pretrained",
        )

        losses = [r["train/loss"] for r in read_metrics(root / "pretrain") if "train/loss" in r]
        summary = {
            "data": {
                "labelled_train": scratch["n_train"],
                "labelled_validation": scratch["n_validation"],
                "pretraining_sequences": pretrained["n_sequences"],
                "seconds": round(data_seconds),
            },
            "pretrain": {
                "steps": pretrained["step"],
                "loss_first_logged": pretrained["first_logged_train_loss"],
                "loss_last_logged": pretrained["last_logged_train_loss"],
                "loss_curve": [round(loss, 4) for loss in losses],
                "seconds": round(pretrain_seconds),
            },
            "finetune_steps": args.finetune_steps,
            "scratch": {
                "validation_score": scratch["validation_score"],
                "validation_loss": scratch["validation_loss"],
                "evaluations": evaluations(root / "finetune-scratch"),
                "seconds": round(scratch_seconds),
            },
            "pretrained": {
                "validation_score": warm["validation_score"],
                "validation_loss": warm["validation_loss"],
                "evaluations": evaluations(root / "finetune-pretrained"),
                "seconds": round(warm_seconds),
            },
        }
        print(json.dumps(summary, indent=2))
        print(
            f"pretraining loss {summary['pretrain']['loss_first_logged']:.4f} -> {summary['pretrain']['loss_last_logged']:.4f} "
            f"over {pretrained['step']} steps; after {args.finetune_steps} finetuning steps: "
            f"scratch score {scratch['validation_score']:.4f} (CTC loss {scratch['validation_loss']:.3f}), "
            f"pretrained score {warm['validation_score']:.4f} (CTC loss {warm['validation_loss']:.3f})"
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
