"""CTC finetuning of the fingerspelling model: `train_and_evaluate(config, workdir)`.

The seed's recipe (REFERENCE.md section 2): per-frame logits over 59 characters + blank, CTC loss
divided by the label length, AdamW with warmup and decay, clipping, a parameter EMA that
validation (and later export) uses, the seed's augmentations, greedy decoding scored with the
competition's normalized Levenshtein metric.

State handling follows Flax NNX's functional style: the model is split once into a graph
definition and plain pytrees (`nnx.split`), the train step is a pure jitted function of
(train state, batch) that merges them back inside, so the state is an ordinary pytree that the
mesh can replicate and Orbax can checkpoint:

    state = {"step": int32, "params": nnx.State, "opt_state": optax state, "ema_params": nnx.State}

Dropout randomness comes from `fold_in(key(seed), step)`, and jax's partitionable threefry makes
the same bits whatever the mesh, so a run gives the same losses on 1 or 4 devices and after a
resume.

Files in the workdir: `config.json`, `checkpoints/`, `metrics.jsonl`, `tb/`, and at the end
`final_metrics.json` (what `train_and_evaluate` returns).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from signpipe.data.atomic import atomic_write_text
from signpipe.fingerspelling.decode import character_table, ctc_greedy_decode, indices_to_phrase
from signpipe.errors import ConfigError, SignpipeError
from signpipe.fingerspelling.shards import read_manifest
from signpipe.metrics import LevenshteinTotals, levenshtein_totals
from signpipe.fingerspelling.model import CTCModel, build_ctc_model
from signpipe.train.checkpoint import RunCheckpoints, has_checkpoints
from signpipe.fingerspelling.config import FinetuneConfig, config_from_dict, dump_config
from signpipe.fingerspelling.data import LabelledSplit, TrainBatches, character_map_of, load_labelled_split, validation_batches
from signpipe.train.loop import outcome_notes, run_training_loop
from signpipe.train.mesh import (
    batch_sharding,
    check_batch_size,
    make_mesh,
    maybe_initialize_distributed,
    process_rows,
    replicate,
    replicated_sharding,
    shard_batch,
)
from signpipe.train.optim import build_optimizer, ema_decay_at, learning_rate_schedule, update_ema
from signpipe.train.reporting import strict_json

FINAL_METRICS_FILE = "final_metrics.json"
SCORE_KEY = "validation/score"


def ctc_loss_per_sequence(logits: jax.Array, batch: Mapping[str, jax.Array], blank: int) -> jax.Array:
    """[B] CTC loss of each sequence divided by its label length (the seed's normalization, so
    long phrases do not dominate the batch)."""
    logit_paddings = 1.0 - batch["mask"].astype(jnp.float32)
    label_paddings = 1.0 - batch["label_mask"].astype(jnp.float32)
    loss = optax.ctc_loss(logits.astype(jnp.float32), logit_paddings, batch["labels"], label_paddings, blank_id=blank)
    label_lengths = jnp.sum(batch["label_mask"].astype(jnp.float32), axis=-1)
    return loss / jnp.maximum(label_lengths, 1.0)


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def build_model(config: FinetuneConfig) -> CTCModel:
    """Fresh model for `config`, its encoder taken from `config.init_from` when set."""
    model = build_ctc_model(config.model_config(), rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1))
    if config.init_from:
        load_encoder_weights(model, config.init_from)
    return model


def _fill_from_saved(target: Any, saved: Any, where: str) -> Any:
    """`target` (a pure dict of arrays) with every leaf replaced by the saved array at the same
    path; saved checkpoints key list items by strings, so keys are compared as strings."""

    def lookup(path: tuple, leaf: Any) -> Any:
        node = saved
        for entry in path:
            key = str(getattr(entry, "key", getattr(entry, "idx", entry)))
            if not isinstance(node, Mapping) or key not in node:
                raise ConfigError(f"{where}: no weights at {'/'.join(str(getattr(p, 'key', p)) for p in path)}")
            node = node[key]
        if isinstance(node, Mapping) and set(node) == {"value"}:  # an nnx Variable, saved as {"value": array}
            node = node["value"]
        value = np.asarray(node)
        if value.shape != leaf.shape:
            raise ConfigError(
                f"{where}: weights at {'/'.join(str(getattr(p, 'key', p)) for p in path)} have shape {value.shape}, "
                f"this model expects {leaf.shape} (was the checkpoint written for another model size?)"
            )
        return jnp.asarray(value, dtype=leaf.dtype)

    return jax.tree_util.tree_map_with_path(lookup, target)


def load_encoder_weights(model: CTCModel, workdir: str | Path) -> None:
    """Copy the weights of the latest checkpoint of a pretraining or CTC-training workdir into
    `model`: its encoder (the train state holds it under `params/encoder`), and, from a CTC run
    (finetuning, noisy student), also its CTC head and the parameter EMA rather than the raw
    weights, i.e. the model that run was validated and exported with; so a noisy student started
    from its teacher starts where the teacher ended instead of relearning its output layer."""
    where = f"init_from={workdir}"
    if not Path(workdir).is_dir():
        raise ConfigError(f"{where}: directory not found (expected the workdir of a pretraining or finetuning run)")
    with RunCheckpoints(workdir, read_only=True) as checkpoints:
        _, saved = checkpoints.restore_unstructured()
    weights = (saved.get("ema_params") or saved.get("params")) if isinstance(saved, Mapping) else None
    if not isinstance(weights, Mapping) or "encoder" not in weights:
        raise ConfigError(f"{where}: its checkpoint holds no params/encoder weights")

    def copy_into(module: nnx.Module, values: Any) -> None:
        target = nnx.state(module, nnx.Param)
        nnx.replace_by_pure_dict(target, _fill_from_saved(nnx.to_pure_dict(target), values, where))
        nnx.update(module, target)

    copy_into(model.encoder, weights["encoder"])
    if "ctc_head" in weights:
        copy_into(model.ctc_head, weights["ctc_head"])


def make_train_step(graphdef: Any, rng_state: Any, optimizer: optax.GradientTransformation, config: FinetuneConfig, mesh: Mesh):
    """The jitted step: loss, gradients, AdamW update, EMA update; batch split over the mesh."""
    blank = config.model_config().blank_index
    schedule = learning_rate_schedule(config)
    base_key = jax.random.key(config.seed)

    def loss_fn(params: Any, batch: Mapping[str, jax.Array], key: jax.Array) -> jax.Array:
        # fresh Variables inside this trace (merge would reuse the eagerly built ones, which
        # cannot be reseeded under a transform)
        model = nnx.merge(graphdef, params, jax.tree.map(lambda leaf: leaf, rng_state))
        nnx.reseed(model, dropout=key)
        logits = model(batch["inputs"], batch["mask"], deterministic=False)
        return weighted_mean(ctc_loss_per_sequence(logits, batch, blank), batch["weights"])

    def train_step(state: dict[str, Any], batch: Mapping[str, jax.Array]) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        step = state["step"]
        loss, grads = jax.value_and_grad(loss_fn)(state["params"], batch, jax.random.fold_in(base_key, step))
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        ema = update_ema(state["ema_params"], params, ema_decay_at(step, config.ema_decay))
        new_state = {"step": step + 1, "params": params, "opt_state": opt_state, "ema_params": ema}
        scalars = {"loss": loss, "grad_norm": optax.tree.norm(grads), "learning_rate": schedule(step)}
        return new_state, scalars

    replicated = replicated_sharding(mesh)
    return jax.jit(
        train_step,
        in_shardings=(replicated, batch_sharding(mesh)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )


def make_eval_step(graphdef: Any, rng_state: Any, blank: int, mesh: Mesh):
    """Jitted: (params, batch) -> per-frame argmax with padded frames set to blank [B, T], and the
    per-sequence CTC loss [B]; both stay split over the mesh like the batch."""

    def eval_step(params: Any, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        model = nnx.merge(graphdef, params, rng_state)
        logits = model(batch["inputs"], batch["mask"], deterministic=True)
        indices = jnp.where(batch["mask"], jnp.argmax(logits, axis=-1), blank).astype(jnp.int32)
        return indices, ctc_loss_per_sequence(logits, batch, blank)

    sharded = batch_sharding(mesh)
    return jax.jit(eval_step, in_shardings=(replicated_sharding(mesh), sharded), out_shardings=(sharded, sharded))


def _to_host(x: jax.Array) -> np.ndarray:
    """A batch-sharded global array as numpy on this host (gathers other hosts' rows if any)."""
    if jax.process_count() == 1:
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def evaluate_split(
    eval_step: Any,
    params: Any,
    split: LabelledSplit,
    config: FinetuneConfig,
    mesh: Mesh,
    character_map: Mapping[str, int],
) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """Greedy-decode every sequence of `split` with `params`; returns the scalars
    (validation/score, validation/loss) and (truth, prediction) pairs in split order."""
    table = character_table(character_map)
    totals = LevenshteinTotals()
    loss_sum = 0.0
    predictions = [""] * len(split)
    for batch, real in validation_batches(
        split, config.eval_batch_size, config.length_bucket, config.max_label_length,
        rows=process_rows(config.eval_batch_size),
    ):
        indices, losses = eval_step(params, shard_batch(batch, mesh))
        indices, losses = _to_host(indices)[: len(real)], _to_host(losses)[: len(real)]
        phrases = [indices_to_phrase(row, table) for row in ctc_greedy_decode(indices)]
        totals = totals + levenshtein_totals([split.phrases[i] for i in real], phrases)
        loss_sum += float(losses.sum())
        for i, phrase in zip(real, phrases, strict=True):
            predictions[i] = phrase
    scalars = {SCORE_KEY: totals.score, "validation/loss": loss_sum / len(split)}
    return scalars, list(zip(split.phrases, predictions, strict=True))


def _check_inputs(config: FinetuneConfig) -> None:
    if not isinstance(config, FinetuneConfig):
        raise ConfigError(f"finetune needs a FinetuneConfig, got {type(config).__name__}")
    if not config.data_dir:
        raise ConfigError("finetune: no data_dir (pass --shards SHARDS, or data_dir=PATH)")
    if not Path(config.data_dir).is_dir():
        raise SignpipeError(f"{config.data_dir}: feature-shard directory not found (expected the output of preprocess)")


StepFactory = Callable[[Any, Any, optax.GradientTransformation, Mesh], Callable[[Any, Any], tuple[Any, dict]]]
"""(graphdef, rng_state, optimizer, mesh) -> jitted `train_step(state, batch) -> (state, scalars)`."""


class StageData(Protocol):
    """What a CTC stage trains and validates on (finetuning's `CTCData`, the noisy student's
    `TrainingData` with its alignments)."""

    train: LabelledSplit
    validation: LabelledSplit
    character_map: dict[str, int]


class CTCData(NamedTuple):
    train: LabelledSplit
    validation: LabelledSplit
    character_map: dict[str, int]


D = TypeVar("D", bound=StageData)


def run_ctc_stage(
    config: FinetuneConfig,
    workdir: str | Path,
    *,
    load_data: Callable[[], D],
    build: Callable[[], CTCModel],
    make_step: StepFactory,
    make_batches: Callable[[D], TrainBatches],
    description: str,
    stage_metrics: Callable[[D, Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train a CTC model the way every CTC stage does (finetuning, noisy student, distillation):
    devices and mesh, the workdir's config check, state with EMA, evaluation of the EMA weights,
    checkpoints and resume through `run_training_loop`, final metrics written to the workdir.
    The stage supplies its data, model, train step and batches; `build`, `make_step` and
    `load_data` run once the devices are set up (multi-host jobs must connect before any array
    exists). `stage_metrics(data, outcome)` adds the stage's own entries to the final metrics."""
    began = time.perf_counter()
    maybe_initialize_distributed()
    workdir = Path(workdir)
    mesh = make_mesh()
    check_batch_size(config.batch_size, mesh)
    check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    if jax.process_index() == 0:
        with RunCheckpoints(workdir, keep=config.keep_checkpoints) as existing:
            existing.check_config(config)  # before anything in the workdir is overwritten
        dump_config(config, workdir)
    data = load_data()

    model = build()
    graphdef, params, rng_state = nnx.split(model, nnx.Param, ...)
    optimizer = build_optimizer(config, params)
    state = replicate(
        {"step": jnp.int32(0), "params": params, "opt_state": optimizer.init(params), "ema_params": jax.tree.map(jnp.copy, params)},
        mesh,
    )
    train_step = make_step(graphdef, rng_state, optimizer, mesh)
    eval_step = make_eval_step(graphdef, rng_state, config.model_config().blank_index, mesh)
    batches = make_batches(data)

    def evaluate(state: dict[str, Any]) -> dict[str, float]:
        scalars, _ = evaluate_split(eval_step, state["ema_params"], data.validation, config, mesh, data.character_map)
        return scalars

    setup_seconds = time.perf_counter() - began
    outcome = run_training_loop(
        config=config,
        workdir=workdir,
        mesh=mesh,
        state=state,
        train_step=train_step,
        batches=batches,
        evaluate=evaluate,
        eval_every=config.eval_every,
        score_key=SCORE_KEY,
        description=description,
    )
    evaluation = outcome.last_evaluation or {}
    metrics: dict[str, Any] = {
        "step": outcome.step,
        "validation_score": evaluation.get(SCORE_KEY),
        "validation_loss": evaluation.get("validation/loss"),
        "best_validation_score": outcome.best_score,
        "best_step": outcome.best_step,
        "train_loss": outcome.last_train.get("loss"),
        "n_train": len(data.train),
        "n_validation": len(data.validation),
        "dropped_too_short_train": data.train.n_dropped_too_short,
        "dropped_too_short_validation": data.validation.n_dropped_too_short,
        **(stage_metrics(data, outcome) if stage_metrics is not None else {}),
        "resumed_from_step": outcome.resumed_from,
        "steps_run": outcome.steps_run,
        "train_seconds": round(outcome.train_seconds, 3),
        # data loading and featurizing, model build: before the loop; then the loop's own split
        "time_split": {"setup": round(setup_seconds, 3), **(outcome.time_split or {})},
        "n_devices": int(mesh.devices.size),
        **outcome_notes(outcome),
    }
    if jax.process_index() == 0:
        atomic_write_text(workdir / FINAL_METRICS_FILE, strict_json(metrics, indent=2) + "\n")
    return metrics


def train_and_evaluate(config: FinetuneConfig, workdir: str | Path) -> dict[str, Any]:
    """Finetune with CTC (resuming from `workdir` when it holds checkpoints of this config) and
    return the final metrics: validation score and loss of the EMA weights, best score and step,
    last train loss, data counts and throughput."""
    _check_inputs(config)

    def load_data() -> CTCData:
        return CTCData(
            load_labelled_split(config.data_dir, "train", config.max_label_length),
            load_labelled_split(config.data_dir, "validation", config.max_label_length),
            character_map_of(config.data_dir, read_manifest(config.data_dir)),
        )

    def make_batches(data: CTCData) -> TrainBatches:
        return TrainBatches(
            data.train,
            config.batch_size,
            config.max_length,
            config.length_bucket,
            config.max_label_length,
            config.seed,
            augment=config.augment,
            rows=process_rows(config.batch_size),
            length_grouping=config.length_grouping,
            augmentation=config.augmentation,
        )

    return run_ctc_stage(
        config,
        workdir,
        load_data=load_data,
        build=lambda: build_model(config),
        make_step=lambda graphdef, rng_state, optimizer, mesh: make_train_step(graphdef, rng_state, optimizer, config, mesh),
        make_batches=make_batches,
        description="finetune",
    )


def load_finetuned_model(workdir: str | Path, which: str | int = "best",
                         use_ema: bool = True) -> tuple[CTCModel, FinetuneConfig, int]:
    """The model of a CTC run's workdir (finetuning, noisy student, distillation), for export,
    alignment, distillation or prediction; the one reader of such checkpoints. `which`: "best" (by
    validation score, else the last), "last", or a step number; EMA weights by default. The config
    is the one saved with that step. Returns (model, config, step)."""
    if not (which in ("best", "last") or (isinstance(which, int) and not isinstance(which, bool))):
        raise ConfigError(f"which={which!r}: expected 'best', 'last' or a step number")
    if not has_checkpoints(workdir):
        raise SignpipeError(f"{workdir}: no checkpoints (expected the workdir of a finetuning run)")
    with RunCheckpoints(workdir, read_only=True) as checkpoints:
        latest = checkpoints.latest_step()
        if latest is None:
            raise SignpipeError(f"{workdir}: no complete checkpoint found")
        step = latest
        if isinstance(which, int):
            if which not in checkpoints.all_steps():
                raise SignpipeError(f"{workdir} step {which}: no such complete checkpoint (found steps {checkpoints.all_steps()})")
            step = which
        elif which == "best":
            progress = checkpoints.saved_progress(latest)
            if progress.get("best_step") in checkpoints.all_steps():
                step = int(progress["best_step"])
        config = config_from_dict(checkpoints.saved_config(step))
        if not isinstance(config, FinetuneConfig):
            raise ConfigError(f"{workdir}: a {type(config).__name__} run, not a finetuning run")
        _, saved = checkpoints.restore_unstructured(step)
    key = "ema_params" if use_ema else "params"
    if not isinstance(saved, Mapping) or key not in saved:
        raise SignpipeError(f"{workdir} step {step}: the checkpoint holds no {key}")
    model = build_ctc_model(config.model_config(), rngs=nnx.Rngs(params=0, dropout=1))
    target = nnx.state(model, nnx.Param)
    values = _fill_from_saved(nnx.to_pure_dict(target), saved[key], f"{workdir} step {step}")
    nnx.replace_by_pure_dict(target, values)
    nnx.update(model, target)
    return model, config, step
