"""What each stage of the 5th place recipe is worth: a seeded ablation with 95% intervals.

    .venv/bin/python benchmarks/recipe_ablation.py [--quick] [--seeds N] [--workdir DIR] [--json-out OUT]
        [--plot OUT.svg] [--only pretraining,cutmix,supplemental,distillation,beam]
        [--teacher-steps T] [--student-steps S] [--pretrain-steps P]
        [--pretrain-set KEY=V ...] [--teacher-set KEY=V ...] [--cutmix-set KEY=V ...]
        [--student-set KEY=V ...] [--distill-set KEY=V ...]

Corpora (synthetic, `signpipe.data.synth`; fixed for the whole benchmark, so every comparison
is paired on the same data; seeds vary model initialization and data order):

- labelled      N sequences by N/10 signers (corpus seed 1101), 5% validation split
- low-label     a 15% subset of the labelled corpus' metadata (same files)
- unlabelled    a supplemental-like corpus 10 x N (seed 2202, one signer per 10 sequences, at most 500,
                each with their own camera aspect, `y_scale_spread=0.15`: the shift a second
                recording campaign brings); its labels are never read by pretraining
- supplemental  the first N sequences of that corpus, labelled, for the supplemental rows
- held-out      400 sequences (200 with --quick) by 40 (20) signers no run ever sees (seed 3303)

Rows (every row once per seed; model = the `local` training preset's tiny 2 x 64 model unless
said otherwise, T steps of batch 16):

  teacher              CTC finetuning on the labelled corpus (the baseline of most rows)
  pretrained           Data2vec 2.0 on labelled + unlabelled (11 x N sequences, P steps), then the
                       teacher's finetuning from that encoder
  low-label            CTC finetuning on the low-label subset
  low-label pretrained the same from the same pretrained encoder
  cutmix               noisy student: the teacher of the same seed pseudo-aligns the labelled
                       train split, a fresh model trains T steps with temporal CutMix on it
  supplemental         labelled + supplemental, no CutMix (the noisy-student stage at CutMix
                       probability 0)
  supplemental+cutmix  noisy student on labelled + supplemental, both aligned by the teacher
  student              the student size (1 x 64) alone, S steps
  distilled            the same student, S steps, plus the KD loss from the teacher of the seed
  greedy / beam        the teacher's held-out logits decoded greedily and by prefix beam search
                       (width 8): score and decoding time per sequence

Comparisons (paired by seed; mean difference and a t interval at 95%):
pretrained - teacher, low-label pretrained - low-label, cutmix - teacher, supplemental - teacher
(supplemental without CutMix), supplemental+cutmix - cutmix (supplemental with CutMix),
distilled - student, beam - greedy.

Every model row is exported (fp16 TFLite bundle, as the pipeline ships it) and scored with the
competition's protocol (`signpipe.export.evaluate`) on the held-out corpus; its train score is the
same bundle on the first 200 sequences of its training corpus. Runs go to two worker processes,
each pinned to one core (on 2 cores that is about 1.2 x the throughput of one process using
both). Finished jobs are kept in the workdir: re-running with the same `--workdir` and settings
only runs what is missing.

Default: 1,000 labelled sequences, T = S = 2,000, P = 2,000, 3 seeds: 62 minutes on 2 CPU cores
(measured, docs/results.md). `--quick`: 400 labelled, T = S = 800, P = 300, 3 seeds, 200 held-out
sequences: about 19 minutes; a look, not a result (with 600 steps it ran in 17 minutes, but the
tiny model was still leaving CTC's blank plateau and seeds differed by 0.05-0.08). More seeds on
an earlier workdir: `--seeds 5 --workdir SAME` runs only the new seeds' jobs.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import dataclasses
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LABELLED_SEED, SUPPLEMENTAL_SEED, HELDOUT_SEED = 1101, 2202, 3303
SUPPLEMENTAL_SPREAD = 0.15
LOW_LABEL_FRACTION = 0.15
UNLABELLED_FACTOR = 10
BEAM_WIDTH = 8
TRAIN_SCORE_LIMIT = 200
PRESET = "local"


@dataclasses.dataclass(frozen=True)
class Scale:
    labelled: int
    heldout: int
    teacher_steps: int
    student_steps: int
    pretrain_steps: int
    seeds: int


DEFAULT = Scale(labelled=1000, heldout=400, teacher_steps=2000, student_steps=2000, pretrain_steps=2000, seeds=3)
QUICK = Scale(labelled=400, heldout=200, teacher_steps=800, student_steps=800, pretrain_steps=300, seeds=3)

COMPARISONS = (
    # (name, group, row, baseline row)
    ("Data2vec pretraining (10x unlabelled)", "pretraining", "pretrained", "teacher"),
    ("Data2vec pretraining (15% labels)", "pretraining", "low-label pretrained", "low-label"),
    ("CutMix noisy student", "cutmix", "cutmix", "teacher"),
    ("supplemental data, no CutMix", "supplemental", "supplemental", "teacher"),
    ("supplemental data, with CutMix", "supplemental", "supplemental+cutmix", "cutmix"),
    ("distillation into 1x64", "distillation", "distilled", "student"),
    ("prefix beam search (width 8)", "beam", "beam", "greedy"),
)
GROUPS = ("pretraining", "cutmix", "supplemental", "distillation", "beam")


# ---------------------------------------------------------------------------------------------
# corpora


def subset_corpus(source: Path, out: Path, n: int | None = None, fraction: float | None = None, seed: int = 0) -> Path:
    """A corpus folder whose metadata lists some of `source`'s sequences (landmark files linked)."""
    if (out / "train.csv").is_file():
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    metadata = pd.read_csv(source / "train.csv")
    if fraction is not None:
        keep = np.random.default_rng(seed).permutation(len(metadata))[: max(1, round(fraction * len(metadata)))]
        metadata = metadata.iloc[np.sort(keep)]
    else:
        metadata = metadata.iloc[:n]
    metadata.to_csv(tmp / "train.csv", index=False)
    for entry in source.iterdir():
        if entry.name != "train.csv" and not entry.name.startswith("synth_"):
            (tmp / entry.name).symlink_to(entry.resolve())
    tmp.rename(out)
    return out


def build_corpora(root: Path, scale: Scale) -> dict[str, str]:
    from signpipe.data.synth import generate_fingerspelling, planted_y_scale
    from signpipe.fingerspelling.preprocess import preprocess
    from signpipe.fingerspelling.shards import MANIFEST

    workers = os.cpu_count() or 1
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    n = scale.labelled

    def corpus(name: str, count: int, seed: int, **options: Any) -> Path:
        path = data / name
        if not (path / "train.csv").is_file():
            generate_fingerspelling(path, count, seed, n_participants=min(max(count // 10, 10), 500), workers=workers,
                                    overwrite=True, **options)  # fmt: skip
        return path

    def shards(name: str, corpus_dir: Path, y_scale: float, fraction: float = 0.05) -> Path:
        path = data / f"{name}-shards"
        if not (path / MANIFEST).is_file():
            preprocess(corpus_dir, path, y_scale=y_scale, validation_fraction=fraction, workers=workers, overwrite=True)
        return path

    labelled = corpus("labelled", n, LABELLED_SEED)
    unlabelled = corpus("unlabelled", UNLABELLED_FACTOR * n, SUPPLEMENTAL_SEED, y_scale_spread=SUPPLEMENTAL_SPREAD)
    heldout = corpus("heldout", scale.heldout, HELDOUT_SEED)
    supplemental = subset_corpus(unlabelled, data / "supplemental", n=n)
    low_label = subset_corpus(labelled, data / "low-label", fraction=LOW_LABEL_FRACTION, seed=LABELLED_SEED)
    y_labelled, y_unlabelled = planted_y_scale(labelled), planted_y_scale(unlabelled)
    return {
        "labelled": str(labelled),
        "low-label": str(low_label),
        "supplemental": str(supplemental),
        "heldout": str(heldout),
        "labelled-shards": str(shards("labelled", labelled, y_labelled)),
        "low-label-shards": str(shards("low-label", low_label, y_labelled)),
        "supplemental-shards": str(shards("supplemental", supplemental, y_unlabelled)),
        "unlabelled-shards": str(shards("unlabelled", unlabelled, y_unlabelled)),
        "heldout-shards": str(shards("heldout", heldout, planted_y_scale(heldout), fraction=0.5)),
    }


# ---------------------------------------------------------------------------------------------
# jobs (run in worker processes; heavy imports stay inside so the core pinning comes first)


def pin_worker(cores: Any) -> None:
    core = cores.get()
    if core is not None:
        os.sched_setaffinity(0, {core})
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _stage_module(stage: str) -> Any:
    from signpipe.fingerspelling import distill, finetune, noisy_student, pretrain

    return {"finetune": finetune, "noisy_student": noisy_student, "distill": distill, "pretrain": pretrain}[stage]


def _train(stage: str, overrides: Sequence[str], data_dir: str, workdir: Path) -> dict[str, Any]:
    from signpipe.fingerspelling.config import resolve_config

    config = dataclasses.replace(resolve_config(stage, PRESET, list(overrides)), data_dir=data_dir)
    started = time.perf_counter()
    metrics = _stage_module(stage).train_and_evaluate(config, workdir)
    return {"train_seconds": round(time.perf_counter() - started, 1), "final_metrics": _jsonable(metrics)}


def _jsonable(values: Any) -> Any:
    return json.loads(json.dumps(values, default=str))


def model_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Train, export the bundle, score it on the held-out corpus and on its training corpus."""
    from signpipe.export.evaluate import evaluate_bundle
    from signpipe.fingerspelling.export import export_checkpoint

    workdir = Path(spec["workdir"])
    result = _train(spec["stage"], spec["overrides"], spec["data_dir"], workdir)
    started = time.perf_counter()
    bundle = workdir / "bundle.zip"
    exported = export_checkpoint(workdir, bundle, quantize="fp16", graph="dynamic")
    heldout = evaluate_bundle(bundle, spec["heldout"])
    train = evaluate_bundle(bundle, spec["train_corpus"], limit=TRAIN_SCORE_LIMIT)
    final = result["final_metrics"]
    return {
        **result,
        "heldout_score": heldout.score,
        "heldout_empty": heldout.n_empty_predictions,
        "heldout_sequences": heldout.n_sequences,
        "train_score": train.score,
        "validation_score": final.get("validation_score"),
        "model_bytes": exported.model_bytes,
        "latency_ms_mean": heldout.latency_ms.get("mean"),
        "export_evaluate_seconds": round(time.perf_counter() - started, 1),
    }


def pretrain_job(spec: dict[str, Any]) -> dict[str, Any]:
    result = _train("pretrain", spec["overrides"], spec["data_dir"], Path(spec["workdir"]))
    final = result["final_metrics"]
    return {**result, "first_loss": final.get("first_logged_train_loss"), "final_loss": final.get("train_loss")}


def align_job(spec: dict[str, Any]) -> dict[str, Any]:
    from signpipe.fingerspelling.align.run import align_shards

    started = time.perf_counter()
    out = {}
    for name, (shards, target) in spec["targets"].items():
        summary = align_shards(spec["teacher"], shards, target)
        out[name] = summary["splits"]["train"]
    return {"alignments": _jsonable(out), "align_seconds": round(time.perf_counter() - started, 1)}


def decode_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Greedy against prefix beam search on the same model's held-out log-probabilities."""
    from signpipe.fingerspelling.align.run import make_log_prob_function
    from signpipe.fingerspelling.decode import beam_search_phrases, decode_phrases
    from signpipe.fingerspelling.shards import read_manifest
    from signpipe.metrics import normalized_levenshtein
    from signpipe.fingerspelling.data import character_map_of, load_labelled_split, validation_batches
    from signpipe.fingerspelling.finetune import load_finetuned_model

    model, config, _ = load_finetuned_model(spec["teacher"], which="best", use_ema=True)
    shards = spec["heldout_shards"]
    character_map = character_map_of(shards, read_manifest(shards))
    log_probs = make_log_prob_function(model)
    truths, greedy, beam = [], [], []
    greedy_seconds = beam_seconds = 0.0
    for split in ("train", "validation"):
        sequences = load_labelled_split(shards, split, config.max_label_length)
        for batch, real in validation_batches(sequences, 32, 32, config.max_label_length):
            mask = batch["mask"][: len(real)]
            values = log_probs(batch["inputs"][: len(real)], mask)
            truths += [sequences.phrases[i] for i in real]
            t0 = time.perf_counter()
            greedy += decode_phrases(values, mask, character_map)
            t1 = time.perf_counter()
            beam += beam_search_phrases(values, mask, character_map, beam_width=BEAM_WIDTH)
            greedy_seconds += t1 - t0
            beam_seconds += time.perf_counter() - t1
    n = len(truths)
    return {
        "greedy_score": normalized_levenshtein(truths, greedy),
        "beam_score": normalized_levenshtein(truths, beam),
        "greedy_ms_per_sequence": 1000 * greedy_seconds / n,
        "beam_ms_per_sequence": 1000 * beam_seconds / n,
        "sequences": n,
        "changed_predictions": sum(g != b for g, b in zip(greedy, beam, strict=True)),
    }


JOB_FUNCTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "model": model_job, "pretrain": pretrain_job, "align": align_job, "decode": decode_job,
}  # fmt: skip


def run_job(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Worker entry: run one job; the workdir is started afresh unless a finished result is there."""
    from signpipe.data.atomic import atomic_write_text

    workdir = Path(spec["workdir"])
    result_file = workdir / "result.json"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    started = time.perf_counter()
    result = JOB_FUNCTIONS[kind](spec)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_text(result_file, json.dumps({"spec": spec, "result": result}, indent=1, default=str))
    return result


# ---------------------------------------------------------------------------------------------
# the plan


@dataclasses.dataclass
class Job:
    name: str
    kind: str
    spec: dict[str, Any]
    deps: tuple[str, ...] = ()
    priority: int = 0  # higher first
    result: dict[str, Any] | None = None
    error: str | None = None


def schedule(steps: int, extra: Sequence[str]) -> list[str]:
    return [f"total_steps={steps}", f"checkpoint_every={steps}", f"log_every={max(steps // 10, 1)}", *extra]


def plan_jobs(root: Path, data: dict[str, str], scale: Scale, args: argparse.Namespace) -> list[Job]:
    groups = set(args.only)
    jobs: list[Job] = []
    runs = root / "runs"
    teacher_overrides = schedule(scale.teacher_steps, args.teacher_set)
    student_overrides = schedule(scale.student_steps, [f"model={args.student_model}", *args.student_set])

    def model(name: str, seed: int, stage: str, overrides: list[str], data_dir: str, train_corpus: str,
              deps: tuple[str, ...] = (), priority: int = 0) -> None:  # fmt: skip
        job = f"{name}/{seed}"
        spec = {"workdir": str(runs / name.replace(" ", "-").replace("+", "-") / str(seed)), "stage": stage,
                "overrides": [*overrides, f"seed={seed}"], "data_dir": data_dir, "train_corpus": train_corpus,
                "heldout": data["heldout"]}  # fmt: skip
        jobs.append(Job(job, "model", spec, deps, priority))

    for seed in range(args.seeds):
        teacher_dir = str(runs / "teacher" / str(seed))
        align_dir = runs / "alignments" / str(seed)
        model("teacher", seed, "finetune", teacher_overrides, data["labelled-shards"], data["labelled"], priority=5)
        if "pretraining" in groups:
            pretrain_dir = str(runs / "pretrain" / str(seed))
            pretrain_overrides = [f"total_steps={scale.pretrain_steps}", f"teacher_decay_steps={scale.pretrain_steps}",
                                  f"checkpoint_every={scale.pretrain_steps}", f"log_every={max(scale.pretrain_steps // 10, 1)}",
                                  *args.pretrain_set, f"seed={seed}"]  # fmt: skip
            jobs.append(Job(f"pretrain/{seed}", "pretrain",
                            {"workdir": pretrain_dir, "overrides": pretrain_overrides,
                             "data_dir": f"{data['labelled-shards']},{data['unlabelled-shards']}"}, priority=10))  # fmt: skip
            model("pretrained", seed, "finetune", [*teacher_overrides, f"init_from={pretrain_dir}"],
                  data["labelled-shards"], data["labelled"], (f"pretrain/{seed}",), 4)  # fmt: skip
            model("low-label", seed, "finetune", teacher_overrides, data["low-label-shards"], data["low-label"])
            model("low-label pretrained", seed, "finetune", [*teacher_overrides, f"init_from={pretrain_dir}"],
                  data["low-label-shards"], data["low-label"], (f"pretrain/{seed}",), 4)  # fmt: skip
        if groups & {"cutmix", "supplemental"}:
            targets = {"labelled": (data["labelled-shards"], str(align_dir / "labelled"))}
            if "supplemental" in groups:
                targets["supplemental"] = (data["supplemental-shards"], str(align_dir / "supplemental"))
            jobs.append(Job(f"alignments/{seed}", "align", {"workdir": str(align_dir), "teacher": teacher_dir,
                                                              "targets": targets}, (f"teacher/{seed}",), 8))  # fmt: skip
            cutmix = [*teacher_overrides, *args.cutmix_set, f"alignments={align_dir / 'labelled'}"]
            model("cutmix", seed, "noisy_student", cutmix, data["labelled-shards"], data["labelled"],
                  (f"alignments/{seed}",), 3)  # fmt: skip
        if "supplemental" in groups:
            # the noisy-student stage with CutMix off: plain augmented batches of labelled + supplemental
            model("supplemental", seed, "noisy_student",
                  [*teacher_overrides, f"alignments={align_dir / 'labelled'}", "cutmix_probability=0",
                   f"supplemental_data_dir={data['supplemental-shards']}"],
                  data["labelled-shards"], data["labelled"], (f"alignments/{seed}",), 3)  # fmt: skip
            model("supplemental+cutmix", seed, "noisy_student",
                  [*cutmix, f"supplemental_data_dir={data['supplemental-shards']}",
                   f"supplemental_alignments={align_dir / 'supplemental'}"],
                  data["labelled-shards"], data["labelled"], (f"alignments/{seed}",), 3)  # fmt: skip
        if "distillation" in groups:
            model("student", seed, "finetune", student_overrides, data["labelled-shards"], data["labelled"])
            model("distilled", seed, "distill", [*student_overrides, *args.distill_set, f"teacher={teacher_dir}"],
                  data["labelled-shards"], data["labelled"], (f"teacher/{seed}",), 2)  # fmt: skip
        if "beam" in groups:
            jobs.append(Job(f"decode/{seed}", "decode", {"workdir": str(runs / "decode" / str(seed)), "teacher": teacher_dir,
                                                          "heldout_shards": data["heldout-shards"]}, (f"teacher/{seed}",), 1))  # fmt: skip
    return jobs


def finished_result(job: Job) -> dict[str, Any] | None:
    path = Path(job.spec["workdir"]) / "result.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    return saved["result"] if saved.get("spec") == json.loads(json.dumps(job.spec)) else None


def execute(jobs: list[Job], workers: int, pin: bool) -> None:
    by_name = {job.name: job for job in jobs}
    pending = []
    for job in jobs:
        job.result = finished_result(job)
        if job.result is None:
            pending.append(job)
        else:
            print(f"[kept] {job.name}", flush=True)
    cores = multiprocessing.get_context("spawn").Queue()
    available = sorted(os.sched_getaffinity(0))
    for k in range(workers):
        cores.put(available[k % len(available)] if pin and workers > 1 else None)
    started = time.perf_counter()
    running: dict[futures.Future, Job] = {}
    with futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=pin_worker, initargs=(cores,)) as pool:  # fmt: skip
        while pending or running:
            for job in list(pending):
                failed = [d for d in job.deps if by_name[d].error]
                if failed:
                    job.error = f"skipped: {failed[0]} failed"
                    pending.remove(job)
                    print(f"[skip] {job.name}: {job.error}", flush=True)
            ready = [j for j in pending if all(by_name[d].result is not None for d in j.deps)]
            ready.sort(key=lambda j: (-j.priority, int(j.name.rsplit("/", 1)[1])))
            for job in ready[: max(workers - len(running), 0)]:
                pending.remove(job)
                running[pool.submit(run_job, job.kind, job.spec)] = job
                print(f"[{time.perf_counter() - started:6.0f} s] start {job.name}", flush=True)
            if not running:
                break
            done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                try:
                    job.result = future.result()
                    brief = {k: v for k, v in job.result.items() if isinstance(v, (int, float))}
                    print(f"[{time.perf_counter() - started:6.0f} s] done  {job.name} {json.dumps(brief)}", flush=True)
                except Exception as error:  # a failed run is reported, its dependents skipped
                    job.error = f"{type(error).__name__}: {error}"
                    print(f"[{time.perf_counter() - started:6.0f} s] FAIL  {job.name}: {job.error}", flush=True)
                    traceback.print_exception(error, file=sys.stdout)


# ---------------------------------------------------------------------------------------------
# statistics, table, plot


def t_quantile(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def row_values(jobs: list[Job]) -> dict[str, dict[int, dict[str, float]]]:
    """row -> seed -> {heldout, train, ...}."""
    rows: dict[str, dict[int, dict[str, float]]] = {}
    for job in jobs:
        if job.result is None:
            continue
        name, seed = job.name.rsplit("/", 1)
        if job.kind == "model":
            rows.setdefault(name, {})[int(seed)] = {
                "heldout": job.result["heldout_score"],
                "train": job.result["train_score"],
                "empty": job.result["heldout_empty"],
                "seconds": job.result["wall_seconds"],
            }
        elif job.kind == "decode":
            for which in ("greedy", "beam"):
                rows.setdefault(which, {})[int(seed)] = {
                    "heldout": job.result[f"{which}_score"],
                    "ms_per_sequence": job.result[f"{which}_ms_per_sequence"],
                }
    return rows


def summarize(rows: dict[str, dict[int, dict[str, float]]]) -> tuple[list[dict], list[dict]]:
    table = []
    for name, by_seed in rows.items():
        held = np.array([v["heldout"] for v in by_seed.values()])
        train = [v["train"] for v in by_seed.values() if "train" in v]
        entry = {"row": name, "seeds": sorted(by_seed), "heldout_mean": float(held.mean()),
                 "heldout_sd": float(held.std(ddof=1)) if held.size > 1 else None,
                 "heldout_per_seed": [float(v) for v in held],
                 "train_mean": float(np.mean(train)) if train else None}  # fmt: skip
        for key in ("seconds", "ms_per_sequence", "empty"):
            values = [v[key] for v in by_seed.values() if key in v]
            if values:
                entry[f"{key}_mean"] = float(np.mean(values))
        table.append(entry)
    comparisons = []
    for label, group, row, base in COMPARISONS:
        if row not in rows or base not in rows:
            continue
        seeds = sorted(set(rows[row]) & set(rows[base]))
        diffs = np.array([rows[row][s]["heldout"] - rows[base][s]["heldout"] for s in seeds])
        entry = {"comparison": label, "group": group, "row": row, "baseline": base, "seeds": seeds,
                 "differences": [float(d) for d in diffs], "mean": float(diffs.mean()) if diffs.size else None}  # fmt: skip
        if diffs.size > 1:
            half = t_quantile(diffs.size) * diffs.std(ddof=1) / math.sqrt(diffs.size)
            entry.update(low=float(diffs.mean() - half), high=float(diffs.mean() + half))
            entry["verdict"] = "helps" if entry["low"] > 0 else "hurts" if entry["high"] < 0 else "not resolved"
        comparisons.append(entry)
    return table, comparisons


def text_report(table: list[dict], comparisons: list[dict]) -> str:
    def f(value: Any, digits: int = 4) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [f"{'row':22} {'seeds':>5} {'held-out mean':>13} {'sd':>7} {'train':>7} {'run s':>6}  per seed",
             "-" * 90]  # fmt: skip
    for e in table:
        seconds = e.get("seconds_mean", e.get("ms_per_sequence_mean"))
        unit = " ms/seq" if "ms_per_sequence_mean" in e else ""
        lines.append(f"{e['row']:22} {len(e['seeds']):>5} {f(e['heldout_mean']):>13} {f(e['heldout_sd']):>7} "
                     f"{f(e['train_mean'], 3):>7} {f(seconds, 1) if seconds is not None else '-':>6}{unit}  "
                     + " ".join(f"{v:.4f}" for v in e["heldout_per_seed"]))  # fmt: skip
    lines += ["", f"{'stage (paired by seed)':40} {'vs':>14} {'mean diff':>9} {'95% interval':>19}  verdict", "-" * 96]
    for c in comparisons:
        interval = f"[{c['low']:+.4f}, {c['high']:+.4f}]" if "low" in c else "-"
        lines.append(f"{c['comparison']:40} {c['baseline']:>14} {c['mean']:+9.4f} {interval:>19}  {c.get('verdict', '-')}")
    return "\n".join(lines)


def interval_svg(table: list[dict], comparisons: list[dict], title: str) -> str:
    """Two panels: each row's held-out mean +- sd, each stage's paired difference with its 95% CI."""
    width, row_h, left, right = 820, 24, 250, 40
    plot_w = width - left - right
    heights = [len(table) * row_h + 50, len(comparisons) * row_h + 60]
    height = sum(heights) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="sans-serif" font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{title}</text>']  # fmt: skip

    def panel(top: float, items: list[tuple[str, float, float, float]], lo: float, hi: float, label: str, zero: bool) -> None:
        span = hi - lo or 1.0

        def x(v: float) -> float:
            return left + (v - lo) / span * plot_w

        out.append(f'<text x="{left}" y="{top + 14}" fill="#333">{label}</text>')
        axis_y = top + 24 + len(items) * row_h
        for k in range(6):
            v = lo + span * k / 5
            out.append(f'<line x1="{x(v):.1f}" y1="{top + 22}" x2="{x(v):.1f}" y2="{axis_y}" stroke="#eee"/>')
            out.append(f'<text x="{x(v):.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#666">{v:+.3f}</text>'
                       if zero else f'<text x="{x(v):.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#666">{v:.3f}</text>')  # fmt: skip
        if zero and lo < 0 < hi:
            out.append(f'<line x1="{x(0):.1f}" y1="{top + 22}" x2="{x(0):.1f}" y2="{axis_y}" stroke="#999" stroke-dasharray="4 3"/>')
        for i, (name, mid, a, b) in enumerate(items):
            y = top + 24 + i * row_h + row_h / 2
            color = "#1a73e8" if not zero else "#188038" if a > 0 else "#d93025" if b < 0 else "#5f6368"
            out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{name}</text>')
            out.append(f'<line x1="{x(a):.1f}" y1="{y:.1f}" x2="{x(b):.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="2"/>')
            out.append(f'<circle cx="{x(mid):.1f}" cy="{y:.1f}" r="4" fill="{color}"/>')

    rows = [(e["row"], e["heldout_mean"], e["heldout_mean"] - (e["heldout_sd"] or 0), e["heldout_mean"] + (e["heldout_sd"] or 0))
            for e in table]  # fmt: skip
    if rows:
        lo = min(r[2] for r in rows)
        hi = max(r[3] for r in rows)
        pad = (hi - lo) * 0.05 + 1e-3
        panel(30, rows, lo - pad, hi + pad, "held-out score per row: mean +- sd over seeds", False)
    diffs = [(c["comparison"], c["mean"], c.get("low", c["mean"]), c.get("high", c["mean"])) for c in comparisons]
    if diffs:
        lo = min(min(d[2] for d in diffs), 0.0)
        hi = max(max(d[3] for d in diffs), 0.0)
        pad = (hi - lo) * 0.05 + 1e-3
        panel(30 + heights[0], diffs, lo - pad, hi + pad,
              "paired difference against the baseline row, 95% t interval (green: above zero, red: below)", True)  # fmt: skip
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="The ~19-minute look (smaller corpus, shorter runs).")
    parser.add_argument("--seeds", type=int, default=None, help="Training seeds per row (at least 3; default 3).")
    parser.add_argument("--workdir", type=Path, default=None, help="Corpora, runs and results (kept for --workdir reuse).")
    parser.add_argument("--json-out", dest="json", type=Path, default=None, help="Write the table and the comparisons here.")
    parser.add_argument("--plot", type=Path, default=None, help="SVG of the rows and intervals (default WORKDIR/recipe_ablation.svg).")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"Comma-separated groups out of {','.join(GROUPS)}.")
    parser.add_argument("--labelled", type=int, default=None, help="Labelled sequences (the unlabelled corpus is 10x).")
    parser.add_argument("--teacher-steps", type=int, default=None)
    parser.add_argument("--student-steps", type=int, default=None)
    parser.add_argument("--pretrain-steps", type=int, default=None)
    parser.add_argument("--student-model", default="1x64")
    parser.add_argument("--workers", type=int, default=None, help="Parallel runs (default: the cores, at most 2 per 2 cores).")
    for name in ("pretrain", "teacher", "cutmix", "student", "distill"):
        parser.add_argument(f"--{name}-set", action="append", default=[], metavar="KEY=V",
                            help=f"Override of the {name} runs' training config (repeatable).")  # fmt: skip
    args = parser.parse_args(argv)
    base = QUICK if args.quick else DEFAULT
    scale = dataclasses.replace(
        base,
        labelled=args.labelled or base.labelled,
        teacher_steps=args.teacher_steps or base.teacher_steps,
        student_steps=args.student_steps or base.student_steps,
        pretrain_steps=args.pretrain_steps or base.pretrain_steps,
        seeds=args.seeds or base.seeds,
    )
    args.seeds = scale.seeds
    if scale.seeds < 3:
        parser.error(f"--seeds must be at least 3 for an interval worth reading, got {scale.seeds}")
    args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(args.only) - set(GROUPS))
    if unknown:
        parser.error(f"--only: unknown groups {unknown}; expected some of {list(GROUPS)}")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="signpipe-ablation-"))
    root = root.absolute()
    root.mkdir(parents=True, exist_ok=True)
    workers = args.workers or max(1, min(len(os.sched_getaffinity(0)), 2))

    started = time.perf_counter()
    load = os.getloadavg()[0]
    data = build_corpora(root, scale)
    corpus_seconds = time.perf_counter() - started
    print(f"[corpora and shards: {corpus_seconds:.0f} s] {root / 'data'}", flush=True)
    jobs = plan_jobs(root, data, scale, args)
    execute(jobs, workers, pin=True)
    total = time.perf_counter() - started

    rows = row_values(jobs)
    table, comparisons = summarize(rows)
    report = text_report(table, comparisons)
    failed = [job for job in jobs if job.error]
    settings = {"scale": dataclasses.asdict(scale), "quick": args.quick, "only": args.only, "workers": workers,
                "student_model": args.student_model, "preset": PRESET,
                "overrides": {name: getattr(args, f"{name}_set") for name in ("pretrain", "teacher", "cutmix", "student", "distill")},
                "corpora": {"labelled_seed": LABELLED_SEED, "supplemental_seed": SUPPLEMENTAL_SEED, "heldout_seed": HELDOUT_SEED,
                            "supplemental_y_scale_spread": SUPPLEMENTAL_SPREAD, "low_label_fraction": LOW_LABEL_FRACTION,
                            "unlabelled_factor": UNLABELLED_FACTOR},
                "workdir": str(root), "command": " ".join(sys.argv)}  # fmt: skip
    machine = {"cpus": os.cpu_count(), "load_average_at_start": round(load, 2),
               "load_average_at_end": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    extras = {job.name: job.result for job in jobs if job.kind in ("align", "pretrain") and job.result}
    print(report)
    print(f"total {total / 60:.1f} min (corpora {corpus_seconds:.0f} s), {workers} workers, "
          f"load average {machine['load_average_at_start']} -> {machine['load_average_at_end']}")  # fmt: skip
    for job in failed:
        print(f"FAILED {job.name}: {job.error}")
    payload = {"settings": settings, "machine": machine, "total_seconds": round(total, 1), "rows": table,
               "comparisons": comparisons, "alignments_and_pretraining": extras,
               "failed": {job.name: job.error for job in failed}}  # fmt: skip
    (root / "recipe_ablation.json").write_text(json.dumps(payload, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    plot = args.plot or root / "recipe_ablation.svg"
    title = f"signpipe recipe ablation ({'quick' if args.quick else 'default'}, {scale.seeds} seeds, {machine['date']})"
    plot.write_text(interval_svg(table, comparisons, title))
    print(f"plot: {plot}\nresults: {root / 'recipe_ablation.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
