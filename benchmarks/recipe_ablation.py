"""What each stage of the seed's recipe adds, on a synthetic corpus at the smoke scale.

    .venv/bin/python benchmarks/recipe_ablation.py [--workdir DIR] [--sequences N] [--teacher-steps T]
        [--student-steps S] [--pretrain-steps P] [--teacher-model M] [--student-model M]
        [--augmentation light|seed] [--reuse]

One synthetic fingerspelling corpus (`signpipe.data.synth`, 10% validation split, the generator's
planted y scale), then, all with the `smoke` presets and the same seed:

1. teacher, scratch       CTC finetuning of the teacher size for T steps from fresh weights
2. teacher, pretrained    P steps of Data2vec 2.0 on every sequence of the shards (labels unused,
                          as the seed pretrained on all its data), then the same T steps
3. teacher, CutMix        the noisy-student step: row 1's model pseudo-aligns the train split
                          (`signpipe.align`), and the teacher is trained again from fresh
                          weights for T steps with temporal CutMix on those alignments
4. student, no teacher    CTC finetuning of the (smaller) student size for S steps
5. student, distilled     the same S steps, same seed and batches, plus the KD loss from the best
                          teacher of rows 1-3 (hard targets on a separate head, weight 10)

Rows 1 vs 2 show pretraining, 1 vs 3 CutMix, 4 vs 5 distillation. Every run uses the same
augmentation (`--augmentation`, default "light": the seed's full pipeline is built for hundreds of
epochs and holds a few-thousand-step run back, `signpipe.train.data.augmentation_pipeline`).

Every score is the normalized Levenshtein score (the competition's metric) of the EMA weights on
the validation split at the end of the run, greedy decoding; "best" is the best of its
evaluations. The table is printed and saved as `ablation.json` in the workdir. `--reuse` keeps the
corpus and the finished runs of an earlier call with the same settings (a finished run is only
evaluated again).

The defaults are sized for about 10-15 minutes on 2 idle CPU cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from signpipe.align.run import align_shards
from signpipe.data.synth import generate_fingerspelling, planted_y_scale
from signpipe.landmarks.preprocess import preprocess
from signpipe.landmarks.shards import MANIFEST
from signpipe.train import distill, finetune, noisy_student, pretrain
from signpipe.train.config import resolve_config

VALIDATION_FRACTION = 0.1


def feature_shards(root: Path, n_sequences: int, seed: int, reuse: bool) -> Path:
    corpus, shards = root / "corpus", root / "shards"
    if reuse and (shards / MANIFEST).is_file():
        return shards
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(shards, ignore_errors=True)
    generate_fingerspelling(corpus, n_sequences, seed)
    preprocess(corpus, shards, y_scale=planted_y_scale(corpus), validation_fraction=VALIDATION_FRACTION)
    return shards


def run_stage(label: str, module: Any, stage: str, workdir: Path, shards: Path, overrides: list[str], reuse: bool) -> dict:
    """One training run with a stage's smoke preset; returns its final metrics plus wall seconds."""
    if not reuse:
        shutil.rmtree(workdir, ignore_errors=True)
    config = dataclasses.replace(resolve_config(stage, "smoke", overrides), data_dir=str(shards))
    print(f"== {label}", flush=True)
    started = time.perf_counter()
    metrics = module.train_and_evaluate(config, workdir)
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"== {label}: {json.dumps({k: metrics.get(k) for k in ('validation_score', 'best_validation_score', 'wall_seconds')})}",
          flush=True)  # fmt: skip
    return metrics


def fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="Where corpus, shards and runs go (default: a temp dir).")
    parser.add_argument("--sequences", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher-model", default="tiny")
    parser.add_argument("--student-model", default="1x64")
    parser.add_argument("--teacher-steps", type=int, default=1000)
    parser.add_argument("--student-steps", type=int, default=500)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--augmentation", default="light", choices=("light", "seed"))
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="signpipe-ablation-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    shards = feature_shards(root, args.sequences, args.seed, args.reuse)
    print(f"[corpus and shards: {time.perf_counter() - started:.0f} s] {root}", flush=True)

    def schedule(steps: int) -> list[str]:
        every = max(steps // 4, 1)
        return [f"total_steps={steps}", f"warmup_steps={min(60, steps // 10)}", f"eval_every={every}",
                f"checkpoint_every={every}", f"log_every={max(every // 5, 1)}", f"augmentation={args.augmentation}"]  # fmt: skip

    teacher = [f"model={args.teacher_model}", *schedule(args.teacher_steps)]
    student = [f"model={args.student_model}", *schedule(args.student_steps)]
    rows: list[dict[str, Any]] = []

    def add(name: str, model: str, init: str, cutmix: str, kd: str, steps: int, metrics: dict) -> None:
        rows.append({"row": name, "model": model, "init": init, "cutmix": cutmix, "teacher": kd, "steps": steps, **metrics})

    scratch = run_stage("teacher, scratch", finetune, "finetune", root / "teacher-scratch", shards, teacher, args.reuse)
    add("teacher, scratch", args.teacher_model, "fresh", "no", "-", args.teacher_steps, scratch)

    pretrain_overrides = [f"model={args.teacher_model}", f"total_steps={args.pretrain_steps}",
                          f"warmup_steps={args.pretrain_steps // 10}", f"teacher_decay_steps={args.pretrain_steps}",
                          f"checkpoint_every={args.pretrain_steps}"]  # fmt: skip
    pretrained_encoder = run_stage("data2vec pretraining", pretrain, "pretrain", root / "pretrain", shards,
                                   pretrain_overrides, args.reuse)  # fmt: skip
    pretrained = run_stage("teacher, pretrained", finetune, "finetune", root / "teacher-pretrained", shards,
                           [*teacher, f"init_from={root / 'pretrain'}"], args.reuse)  # fmt: skip
    add("teacher, pretrained", args.teacher_model, f"data2vec {args.pretrain_steps} steps", "no", "-", args.teacher_steps,
        {**pretrained, "pretrain_seconds": pretrained_encoder["wall_seconds"]})  # fmt: skip

    print("== pseudo-alignment with the scratch teacher", flush=True)
    align_started = time.perf_counter()
    alignment_summary = align_shards(root / "teacher-scratch", shards, root / "alignments")
    align_seconds = time.perf_counter() - align_started
    print(json.dumps(alignment_summary["splits"]), f"[{align_seconds:.0f} s]", flush=True)
    cutmix = run_stage("teacher, CutMix", noisy_student, "noisy_student", root / "teacher-cutmix", shards,
                       [*teacher, f"alignments={root / 'alignments'}"], args.reuse)  # fmt: skip
    add("teacher, CutMix (noisy student)", args.teacher_model, "fresh", f"p={cutmix['cutmix_probability']}", "-",
        args.teacher_steps, cutmix)  # fmt: skip

    teachers = {"teacher-scratch": scratch, "teacher-pretrained": pretrained, "teacher-cutmix": cutmix}
    best_teacher = max(teachers, key=lambda name: teachers[name]["best_validation_score"])
    plain = run_stage("student, no teacher", finetune, "finetune", root / "student-plain", shards, student, args.reuse)
    add("student, no teacher", args.student_model, "fresh", "no", "-", args.student_steps, plain)
    distilled = run_stage("student, distilled", distill, "distill", root / "student-distilled", shards,
                          [*student, f"teacher={root / best_teacher}"], args.reuse)  # fmt: skip
    add("student, distilled", args.student_model, "fresh", "no", best_teacher, args.student_steps, distilled)

    header = f"{'row':33} {'model':6} {'init':20} {'CutMix':7} {'KD from':18} {'steps':>5} {'score':>6} {'best':>6} {'loss':>6} {'time s':>7}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['row']:33} {row['model']:6} {row['init']:20} {row['cutmix']:7} {row['teacher']:18} {row['steps']:>5} "
            f"{fmt(row['validation_score']):>6} {fmt(row['best_validation_score']):>6} {fmt(row['validation_loss'], 2):>6} "
            f"{fmt(row['wall_seconds'], 0):>7}"
        )
    usable = alignment_summary["splits"]["train"]
    lines.append(
        f"alignments (scratch teacher, train split): {usable['usable']}/{usable['sequences']} usable, "
        f"{usable['low_confidence']} low-confidence, {usable['impossible']} impossible, "
        f"mean confidence {fmt(usable['mean_confidence'])}, {align_seconds:.0f} s"
    )
    lines.append(f"total {time.perf_counter() - started:.0f} s; validation sequences: {scratch['n_validation']}, "
                 f"train: {scratch['n_train']}")  # fmt: skip
    print("\n".join(lines), flush=True)
    (root / "ablation.json").write_text(json.dumps({"settings": vars(args) | {"workdir": str(root)}, "rows": rows,
                                                    "alignments": alignment_summary}, indent=2, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
