"""The isolated-signs DAG: the top-50 recipe as one pipeline.

    corpora (`pipelines.corpora`: fingerprint, validate, held-out signers)
    -> plan folds -> train fold ×k (ParallelFor) -> export ensemble (Collected)
    -> evaluate -> gate -> If(passed): publish

`plan folds` assigns whole participants to k folds (StratifiedGroupKFold) and estimates the
corpus' y scale once; each fold step trains one ArcFace transformer on every participant but its
fold's own and validates on those; the export averages the k fold models' class probabilities
inside ONE TFLite model with the competition's interface and reports the out-of-fold accuracy;
evaluate scores that bundle the asl-signs way on the evaluation corpus (accuracy, top-3, mean
latency per sequence, the confusion matrix); the gate checks the 40 MB and mean-latency limits,
an accuracy floor and the champion; publish promotes the bundle when the gate passed.

`build_pipeline(preset, target, images, hold_out)` returns the `@dsl.pipeline` function for one
preset (`pipelines.signs_presets`), target and form of the head, like `pipelines.fingerspelling`: "local" leaves every
step on the local interpreter, "vertex" sets each step's image (`signpipe.images`: the training
steps on the image of their accelerator) and machine. Run-time parameters default to the preset,
plus `corpus_uri`, `eval_corpus_uri` (keep it fixed across runs: the champion is judged on it; a
corpus sharing participants with the training corpus is refused unless
`allow_shared_participants`) or, in the hold-out form, `holdout_fraction` and `holdout_seed`,
`cache_max_age_days`, `registry`, `registry_storage` and `labels`. `vertex` is accepted, unused, so that `signpipe
submit` sends both pipelines the same parameters.

(No `from __future__ import annotations` here: kfp reads the pipeline's parameter types from
its live annotations.)
"""

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Model

from components.publish import publish
from components.signs.evaluate import evaluate_signs
from components.signs.export import export_ensemble
from components.signs.gate import gate_signs
from components.signs.plan import plan_folds
from components.signs.train import train_fold
from pipelines.corpora import HOLDOUT_SEED, corpora, for_form
from pipelines.placement import TaskPlacement
from pipelines.signs_presets import SignsPipelinePreset

PIPELINE_NAME = "signpipe-isolated-signs"


class PipelineOutputs(NamedTuple):
    """What a run ends with, also the pipeline's outputs in the Vertex UI: the ensemble bundle,
    its evaluation, and the gate's verdict (publishing is conditional, the registry tells)."""

    bundle: Model
    evaluation: Artifact
    verdict: Artifact


def build_pipeline(preset: SignsPipelinePreset, target: str = "local", images: Mapping[str, str] | None = None,
                   hold_out: bool = False) -> Callable:
    """The pipeline function of `preset` for `target` ("local" or "vertex"; "vertex" needs
    `images`, image family -> image reference, see `signpipe.images.image_uris`); `hold_out`:
    the form that holds participants of the corpus out to score on (`pipelines.corpora`)."""
    placement = TaskPlacement(preset, target, images)
    defaults: dict[str, Any] = preset.runtime_parameters()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description=f"Isolated signs (top-50 recipe), preset {preset.name}: {preset.description}"
                    + (" (scored on participants held out of the corpus)" if hold_out else ""),
    )
    @for_form(hold_out)
    def isolated_signs(
        corpus_uri: str,
        registry: str,
        registry_storage: str = "",
        labels: dict = {},  # noqa: B006 (kfp reads defaults from the signature; never mutated)
        vertex: dict = {},  # noqa: B006
        n_folds: int = defaults["n_folds"],
        fold_seed: int = defaults["fold_seed"],
        y_scale: float = defaults["y_scale"],
        signs_preset: str = defaults["signs_preset"],
        signs_overrides: dict = defaults["signs_overrides"],
        quantize: str = defaults["quantize"],
        checkpoint: str = defaults["checkpoint"],
        eval_threads: int = 1,
        min_accuracy: float = defaults["min_accuracy"],
        max_model_mb: float = defaults["max_model_mb"],
        max_mean_latency_ms: float = defaults["max_mean_latency_ms"],
        champion_margin: float = defaults["champion_margin"],
        cache_max_age_days: int = 0,
        eval_corpus_uri: str = "",
        allow_shared_participants: bool = False,
        holdout_fraction: float = preset.holdout_fraction,
        holdout_seed: int = HOLDOUT_SEED,
    ) -> PipelineOutputs:
        data = corpora(placement, "isolated-signs", hold_out, corpus_uri, eval_corpus_uri, cache_max_age_days, holdout_fraction, holdout_seed,
                       allow_shared_participants)
        planned = placement.place(
            plan_folds(corpus=data.train, eval_corpus=data.eval, n_folds=n_folds, fold_seed=fold_seed,
                       y_scale=y_scale, training_preset=signs_preset, training_overrides=signs_overrides,
                       corpus_fingerprint=data.train_key, eval_corpus_fingerprint=data.eval_key),
            "plan-folds",
        )
        for ready in data.ready:
            planned.after(ready)
        with dsl.ParallelFor(planned.outputs["Output"], name="folds") as fold:
            trained = placement.place(
                train_fold(corpus=data.train, plan=planned.outputs["plan"], fold=fold, preset=signs_preset,
                           overrides=signs_overrides, corpus_fingerprint=data.train_key),
                "train-fold",
            )
        exported = placement.place(
            export_ensemble(folds=dsl.Collected(trained.outputs["model"]), quantize=quantize, checkpoint=checkpoint,
                            corpus_fingerprint=data.train_fingerprint),
            "export-ensemble",
        ).set_display_name("export fold ensemble")
        scored = placement.place(
            evaluate_signs(bundle=exported.outputs["bundle"], eval_corpus=data.eval, threads=eval_threads,
                           eval_corpus_fingerprint=data.eval_fingerprint),
            "evaluate-signs",
        )
        judged = gate_signs(
            bundle=exported.outputs["bundle"], evaluation=scored.outputs["evaluation"], eval_corpus=data.eval,
            registry=registry, registry_storage=registry_storage, min_accuracy=min_accuracy, max_model_mb=max_model_mb,
            max_mean_latency_ms=max_mean_latency_ms, champion_margin=champion_margin, plumbing=preset.plumbing,
            eval_corpus_fingerprint=data.eval_fingerprint, shared_participants=data.shared_participants,
        )
        # the gate reads the registry's current champion: a cached verdict would judge against a stale one
        placement.place(judged, "gate-signs").set_caching_options(False)
        with dsl.If(judged.outputs["Output"] == True, name="gate-passed"):  # noqa: E712 (a pipeline condition, not Python)
            promoted = publish(
                bundle=exported.outputs["bundle"], evaluation=scored.outputs["evaluation"], verdict=judged.outputs["verdict"],
                registry=registry, registry_storage=registry_storage, champion_margin=champion_margin, labels=labels,
                run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            )
            placement.place(promoted, "publish").set_caching_options(False)
        return PipelineOutputs(bundle=exported.outputs["bundle"], evaluation=scored.outputs["evaluation"],
                               verdict=judged.outputs["verdict"])

    return isolated_signs
