"""The fingerspelling DAG: the 5th place recipe as one pipeline.

    corpora (`pipelines.corpora`: fingerprint, validate, held-out signers)
    -> estimate y scale -> plan shards -> write shard (ParallelFor) -> gather shards
    -> [pretrain] -> finetune teacher -> [align -> noisy student (CutMix)] -> [distill student]
    -> export -> evaluate -> gate -> If(passed): publish

Bracketed stages are switched on or off by the preset (`pipelines.presets`): `local` (the main
job on a CPU) is finetuning alone, `smoke` has every stage but pretraining. A noisy student starts
from the pretrained encoder, or from the teacher's weights where the preset says so
(`PipelinePreset.noisy_student_from_teacher`). Without distillation the exported model is the last
teacher; without the noisy student, distillation learns from the first teacher on plain batches.

`build_pipeline(preset, target, images, hold_out)` returns the `@dsl.pipeline` function for one
preset, one target and one form of the head (`hold_out`: participants held out of the corpus, or
an evaluation corpus given; `pipelines.corpora`). Target "local" leaves every step on the local
interpreter with no machine requests (they would only be ignored with a warning); "vertex" sets each step's image (from `signpipe.images`) and
machine (from the preset), and turns a step whose machine needs a custom job (the TPU
pretraining) into its launcher form. Everything else about a run is a pipeline parameter whose
default comes from the preset (`PipelinePreset.runtime_parameters`), plus:

- `corpus_uri`: the training corpus folder (Kaggle layout), imported as a `Dataset`;
- `eval_corpus_uri`: the corpus the bundle is scored on, a fixed set of other signers so that
  every run and the champion are judged on the same data, with `allow_shared_participants`; or,
  in the hold-out form, `holdout_fraction` and `holdout_seed`;
- `cache_max_age_days`: cached outputs older than this are not reused (0: no limit; a Vertex run
  sets it below the bucket's retention, `pipelines.vertex`);
- `registry`, `registry_storage`: the model registry (`signpipe.registry.open_registry`);
- `labels`: what the published version is labelled with (preset, git revision);
- `vertex`: project, region, service account and TensorBoard for the custom-job launcher.

(No `from __future__ import annotations` here: kfp reads the pipeline's parameter types from
its live annotations.)
"""

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Model

from components.aspect import estimate_y_scale
from components.fingerspelling.align import align
from components.fingerspelling.distill import distill
from components.fingerspelling.evaluate import evaluate
from components.fingerspelling.export import export
from components.fingerspelling.finetune import finetune
from components.fingerspelling.gate import gate
from components.fingerspelling.noisy_student import noisy_student
from components.fingerspelling.preprocess import gather_shards, plan_shards, write_shard
from components.fingerspelling.pretrain import pretrain, pretrain_on_custom_job
from components.publish import publish
from pipelines.corpora import HOLDOUT_SEED, corpora, for_form
from pipelines.presets import PipelinePreset, TaskPlacement

PIPELINE_NAME = "signpipe-fingerspelling"


class PipelineOutputs(NamedTuple):
    """What a run ends with, also shown as the pipeline's outputs in the Vertex UI: the bundle,
    its evaluation, and the gate's verdict (publishing is conditional, the registry tells)."""

    bundle: Model
    evaluation: Artifact
    verdict: Artifact


def build_pipeline(preset: PipelinePreset, target: str = "local", images: Mapping[str, str] | None = None,
                   hold_out: bool = False) -> Callable:
    """The pipeline function of `preset` for `target` ("local" or "vertex"; "vertex" needs
    `images`, image family -> image reference, see `signpipe.images.image_uris`); `hold_out`:
    the form that holds participants of the corpus out to score on (`pipelines.corpora`)."""
    placement = TaskPlacement(preset, target, images)
    defaults: dict[str, Any] = preset.runtime_parameters()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description=f"Fingerspelling recipe (5th place), preset {preset.name}: {preset.description}"
                    + (" (scored on participants held out of the corpus)" if hold_out else ""),
    )
    @for_form(hold_out)
    def fingerspelling(
        corpus_uri: str,
        registry: str,
        registry_storage: str = "",
        labels: dict = {},  # noqa: B006 (kfp reads defaults from the signature; never mutated)
        vertex: dict = {},  # noqa: B006
        n_shards: int = defaults["n_shards"],
        validation_fraction: float = defaults["validation_fraction"],
        group_by_participant: bool = defaults["group_by_participant"],
        split_seed: int = 42,
        y_scale_method: str = defaults["y_scale_method"],
        align_min_confidence: float = defaults["align_min_confidence"],
        align_min_character_confidence: float = defaults["align_min_character_confidence"],
        pretrain_preset: str = defaults.get("pretrain_preset", ""),
        pretrain_overrides: dict = defaults.get("pretrain_overrides", {}),
        finetune_preset: str = defaults["finetune_preset"],
        finetune_overrides: dict = defaults["finetune_overrides"],
        noisy_student_preset: str = defaults.get("noisy_student_preset", ""),
        noisy_student_overrides: dict = defaults.get("noisy_student_overrides", {}),
        distill_preset: str = defaults.get("distill_preset", ""),
        distill_overrides: dict = defaults.get("distill_overrides", {}),
        quantize: str = defaults["quantize"],
        export_graph: str = defaults["export_graph"],
        eval_threads: int = 1,
        min_score: float = defaults["min_score"],
        max_model_mb: float = defaults["max_model_mb"],
        max_latency_p95_ms: float = defaults["max_latency_p95_ms"],
        latency_frames: int = defaults["latency_frames"],
        champion_margin: float = defaults["champion_margin"],
        cache_max_age_days: int = 0,
        eval_corpus_uri: str = "",
        allow_shared_participants: bool = False,
        holdout_fraction: float = preset.holdout_fraction,
        holdout_seed: int = HOLDOUT_SEED,
    ) -> PipelineOutputs:
        data = corpora(placement, "fingerspelling", hold_out, corpus_uri, eval_corpus_uri, cache_max_age_days, holdout_fraction, holdout_seed,
                       allow_shared_participants)
        aspect = placement.place(estimate_y_scale(corpus=data.train, method=y_scale_method, corpus_fingerprint=data.train_key),
                                 "estimate-y-scale")
        plan = placement.place(
            plan_shards(corpus=data.train, n_shards=n_shards, validation_fraction=validation_fraction,
                        group_by_participant=group_by_participant, split_seed=split_seed, corpus_fingerprint=data.train_key),
            "plan-shards",
        )
        for ready in data.ready:
            aspect.after(ready)
            plan.after(ready)
        with dsl.ParallelFor(plan.outputs["Output"], name="shards") as shard_index:
            shard = placement.place(write_shard(plan=plan.outputs["plan"], index=shard_index), "write-shard")
        features = placement.place(
            gather_shards(plan=plan.outputs["plan"], shards=dsl.Collected(shard.outputs["shard"]),
                          y_scale=aspect.outputs["Output"]),
            "gather-shards",
        ).outputs["features"]

        pretrained = None
        if preset.has("pretrain"):
            machine = preset.machine("pretrain")
            if target == "vertex" and machine.custom_job:
                task = pretrain_on_custom_job(
                    features=features, preset=pretrain_preset, overrides=pretrain_overrides,
                    image_uri=placement.training_image("pretrain"), machine=placement.machine_dict("pretrain"), vertex=vertex,
                    # the job's identity: the same for every retry of this task, so a retry finds its job
                    run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, task_name=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
                )
                placement.place_launcher(task, "pretrain")
            else:
                task = placement.place(pretrain(features=features, preset=pretrain_preset, overrides=pretrain_overrides), "pretrain")
            pretrained = task.outputs["model"]

        teacher_task = finetune(features=features, preset=finetune_preset, overrides=finetune_overrides,
                                **({"pretrained": pretrained} if pretrained is not None else {}))
        teacher = placement.place(teacher_task, "finetune").set_display_name("finetune teacher").outputs["model"]

        alignments = None
        if preset.has("noisy_student"):
            aligned = placement.place(align(features=features, teacher=teacher, min_confidence=align_min_confidence,
                                            min_character_confidence=align_min_character_confidence), "align")
            alignments = aligned.outputs["alignments"]
            start = teacher if preset.noisy_student_from_teacher else pretrained
            student_of_itself = noisy_student(features=features, alignments=alignments, preset=noisy_student_preset,
                                              overrides=noisy_student_overrides,
                                              **({"pretrained": start} if start is not None else {}))
            teacher = placement.place(student_of_itself, "noisy-student").set_display_name(
                "noisy student (CutMix)").outputs["model"]

        final_model = teacher
        if preset.has("distill"):
            distilled = distill(features=features, teacher=teacher, preset=distill_preset, overrides=distill_overrides,
                                **({"alignments": alignments} if alignments is not None else {}))
            final_model = placement.place(distilled, "distill").set_display_name(
                "distill student").outputs["model"]

        exported = placement.place(export(student=final_model, features=features, quantize=quantize, graph=export_graph,
                                          corpus_fingerprint=data.train_fingerprint), "export")
        scored = placement.place(evaluate(bundle=exported.outputs["bundle"], eval_corpus=data.eval, threads=eval_threads,
                                          eval_corpus_fingerprint=data.eval_fingerprint), "evaluate")
        judged = gate(
            bundle=exported.outputs["bundle"], evaluation=scored.outputs["evaluation"], eval_corpus=data.eval,
            registry=registry, registry_storage=registry_storage, min_score=min_score, max_model_mb=max_model_mb,
            max_latency_p95_ms=max_latency_p95_ms, latency_frames=latency_frames, champion_margin=champion_margin,
            plumbing=preset.plumbing, eval_corpus_fingerprint=data.eval_fingerprint,
            shared_participants=data.shared_participants,
        )
        # The gate reads the registry's current champion: a cached verdict would judge against a stale one.
        placement.place(judged, "gate").set_caching_options(False)
        with dsl.If(judged.outputs["Output"] == True, name="gate-passed"):  # noqa: E712 (a pipeline condition, not Python)
            promoted = publish(
                bundle=exported.outputs["bundle"], evaluation=scored.outputs["evaluation"], verdict=judged.outputs["verdict"],
                registry=registry, registry_storage=registry_storage, champion_margin=champion_margin, labels=labels,
                run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            )
            placement.place(promoted, "publish").set_caching_options(False)
        return PipelineOutputs(bundle=exported.outputs["bundle"], evaluation=scored.outputs["evaluation"],
                               verdict=judged.outputs["verdict"])

    return fingerspelling
