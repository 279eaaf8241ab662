"""Isolated-signs training: one fold (`train_and_evaluate(config, workdir)`) or several in turn
with their out-of-fold score (`train_folds(config, root, folds)`).

The fold's training participants are read from the corpus (`folds.fold_metadata`), the corpus' y
scale is estimated (unless the config names one; the same for every fold), and the classifier is trained with the ArcFace
loss and Ranger; the slow (Lookahead) weights are validated on the held-out participants: accuracy,
top-3 accuracy, loss. The step is one jitted function from raw key points to the update, with the
preprocessing and augmentation of `features` / `augment` inside it.

State handling follows `signpipe.fingerspelling.finetune` (Flax NNX split into a graph definition and plain
pytrees; data parallel over `jax.sharding`; Orbax checkpoints through the shared step loop, so a
killed run resumes exactly):

    state = {"step": int32, "fast": params, "slow": params, "opt_state": Ranger state}

Files in the workdir: `config.json` (the resolved config: y scale and step count filled in),
`checkpoints/`, `metrics.jsonl`, `tb/`, and at the end `final_metrics.json` (what
`train_and_evaluate` returns) and `validation_predictions.npz` (sequence ids, labels and class
probabilities of the validation participants, for the out-of-fold score).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from signpipe.data.atomic import atomic_path, atomic_write_text
from signpipe.data.corpus import ISOLATED_SIGNS, open_corpus
from signpipe.errors import ConfigError, CorpusError, Problem, SignpipeError
from signpipe.signs import augment, features
from signpipe.signs.config import SignsConfig, config_from_dict, dump_config
from signpipe.signs.data import SignBatches, SignSequences, evaluation_batches, hand_sequences, read_sign_sequences
from signpipe.signs.folds import (
    OOF_METRICS_FILE,
    VALIDATION_PREDICTIONS_FILE,
    collect_out_of_fold,
    fold_metadata,
    fold_workdir,
    fold_workdirs,
)
from signpipe.signs.model import SignClassifier, arcface_loss, build_sign_model, class_probabilities
from signpipe.signs.optim import ranger, seed_schedule
from signpipe.train.checkpoint import RunCheckpoints, has_checkpoints
from signpipe.train.compile_cache import enable_compilation_cache
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
from signpipe.train.reporting import strict_json

FINAL_METRICS_FILE = "final_metrics.json"
SCORE_KEY = "validation/accuracy"


def resolve_compute_dtype(name: str) -> Any:
    """"auto": bfloat16 where the backend computes it natively (GPU, TPU), else float32."""
    if name == "auto":
        return jnp.bfloat16 if jax.default_backend() in ("gpu", "tpu") else jnp.float32
    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]


@dataclasses.dataclass(frozen=True)
class FoldData:
    config: SignsConfig
    """The config with y scale and step count resolved."""
    train: SignSequences
    validation: SignSequences
    n_classes: int


def steps_per_epoch(config: SignsConfig, n_train: int) -> int:
    return max(n_train // config.batch_size, 1)


def prepare_fold(config: SignsConfig) -> FoldData:
    """Read the fold's sequences and resolve what the config left to the data."""
    if not isinstance(config, SignsConfig):
        raise ConfigError(f"signs training needs a SignsConfig, got {type(config).__name__}")
    if not config.data_dir:
        raise ConfigError("signs training: no data_dir (pass --data CORPUS, or data_dir=PATH)")
    corpus = open_corpus(config.data_dir)
    if corpus.kind != ISOLATED_SIGNS:
        raise SignpipeError(f"{config.data_dir}: a {corpus.kind} corpus; isolated-signs training needs an asl-signs corpus")
    train_rows, validation_rows = fold_metadata(corpus.metadata, config.fold, config.n_folds, config.fold_seed)
    train = read_sign_sequences(corpus, train_rows, config.max_frames)
    validation = read_sign_sequences(corpus, validation_rows, config.max_frames)
    problems = infinite_points(train, str(corpus.root)) + infinite_points(validation, str(corpus.root))
    if problems:
        raise CorpusError(problems)
    y_scale = config.y_scale
    if y_scale == 0:
        from signpipe.landmarks.aspect import estimate_y_scale

        # a property of the corpus' cameras, not of the labels: estimated on the whole corpus, so every
        # fold gets the same value and the ensemble graph computes the features once for all folds
        y_scale = estimate_y_scale(
            hand_sequences(corpus, corpus.metadata, config.y_scale_sequences, config.fold_seed), n_bootstrap=0
        ).y_scale
    per_epoch = steps_per_epoch(config, len(train))
    total_steps = config.total_steps or config.epochs * per_epoch
    resolved = dataclasses.replace(config, y_scale=round(float(y_scale), 6), total_steps=int(total_steps))
    return FoldData(resolved, train, validation, len(corpus.label_map))


def infinite_points(sequences: SignSequences, where: str) -> list[Problem]:
    """A problem for each sequence whose key points hold +-inf (NaN is a missing landmark): one such
    sequence makes the loss NaN at the first batch that holds it, so training refuses it up front."""
    problems = []
    for sequence_id, points in zip(sequences.sequence_ids, sequences.points, strict=True):
        infinite = np.argwhere(np.isinf(points))
        if len(infinite):
            problems.append(Problem(
                f"{where} sequence {int(sequence_id)}",
                f"{len(infinite)} infinite coordinate(s), the first at frame {int(infinite[0][0])}, key point "
                f"{int(infinite[0][1])}; expected finite coordinates (NaN where a landmark is missing). Fix or drop "
                "the sequence",
            ))  # fmt: skip
    return problems


def learning_rate_schedule(config: SignsConfig, n_train: int) -> optax.Schedule:
    warmup = min(int(round(config.warmup_epochs * steps_per_epoch(config, n_train))), config.total_steps - 1)
    return seed_schedule(config.initial_learning_rate, config.learning_rate, config.end_learning_rate, warmup,
                         config.total_steps)


def build_optimizer(config: SignsConfig, n_train: int) -> optax.GradientTransformation:
    return ranger(learning_rate_schedule(config, n_train), b1=config.adam_b1, b2=config.adam_b2,
                  sync_period=config.lookahead_sync_period, slow_step_size=config.lookahead_step_size,
                  clip_norm=config.clip_norm)


def model_inputs(batch: Mapping[str, jax.Array], y_scale: float, key: jax.Array | None,
                 augment_config: augment.AugmentConfig) -> jax.Array:
    """Raw key points of a batch -> model features; augmented when a key is given."""
    points = features.normalize_points(batch["points"], batch["mask"], y_scale)
    if key is not None:
        points = augment.augment_batch(points, key, augment_config)
    return features.frame_features(points, batch["mask"])


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def make_train_step(graphdef: Any, rng_state: Any, optimizer: optax.GradientTransformation, config: SignsConfig,
                    schedule: optax.Schedule, mesh: Mesh):
    """The jitted step: features (+ augmentation), ArcFace loss, gradients of the fast weights,
    the Ranger update of fast and slow weights."""
    base_key = jax.random.key(config.seed)
    augment_config = config.augment_config()

    def loss_fn(fast: Any, batch: Mapping[str, jax.Array], key: jax.Array) -> tuple[jax.Array, jax.Array]:
        dropout_key, augment_key = jax.random.split(key)
        model = nnx.merge(graphdef, fast, jax.tree.map(lambda leaf: leaf, rng_state))
        nnx.reseed(model, dropout=dropout_key)
        x = model_inputs(batch, config.y_scale, augment_key if config.augment else None, augment_config)
        cosine = model(x, batch["mask"], deterministic=False)
        losses = arcface_loss(cosine, batch["labels"], config.arcface_scale, config.arcface_margin, config.label_smoothing)
        correct = (jnp.argmax(cosine, axis=-1) == batch["labels"]).astype(jnp.float32)
        return weighted_mean(losses, batch["weights"]), weighted_mean(correct, batch["weights"])

    def train_step(state: dict[str, Any], batch: Mapping[str, jax.Array]) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        step = state["step"]
        (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state["fast"], batch, jax.random.fold_in(base_key, step)
        )
        params = optax.LookaheadParams(state["fast"], state["slow"])
        updates, opt_state = optimizer.update(grads, state["opt_state"], params)
        params = optax.apply_updates(params, updates)
        new_state = {"step": step + 1, "fast": params.fast, "slow": params.slow, "opt_state": opt_state}
        scalars = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.tree.norm(grads), "learning_rate": schedule(step)}
        return new_state, scalars

    replicated = replicated_sharding(mesh)
    return jax.jit(train_step, in_shardings=(replicated, batch_sharding(mesh)), out_shardings=(replicated, replicated),
                   donate_argnums=0)


def make_eval_step(graphdef: Any, rng_state: Any, config: SignsConfig, mesh: Mesh):
    """Jitted: (params, batch) -> class probabilities [B, C] and the ArcFace loss [B]."""
    augment_config = config.augment_config()

    def eval_step(params: Any, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        model = nnx.merge(graphdef, params, rng_state)
        cosine = model(model_inputs(batch, config.y_scale, None, augment_config), batch["mask"], deterministic=True)
        losses = arcface_loss(cosine, batch["labels"], config.arcface_scale, config.arcface_margin, config.label_smoothing)
        return class_probabilities(cosine, config.arcface_scale), losses

    sharded = batch_sharding(mesh)
    return jax.jit(eval_step, in_shardings=(replicated_sharding(mesh), sharded), out_shardings=(sharded, sharded))


def _to_host(x: jax.Array) -> np.ndarray:
    if jax.process_count() == 1:
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def accuracy_scalars(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    ranked = np.argsort(-probabilities, axis=1, kind="stable")
    return {
        "accuracy": float(np.mean(ranked[:, 0] == labels)),
        "top3_accuracy": float(np.mean((ranked[:, :3] == labels[:, None]).any(axis=1))),
    }


def evaluate_split(eval_step: Any, params: Any, sequences: SignSequences, config: SignsConfig, mesh: Mesh
                   ) -> tuple[dict[str, float], np.ndarray]:
    """Scalars (validation/accuracy, top3_accuracy, loss) and probabilities [N, C] in split order."""
    probabilities: np.ndarray | None = None
    loss_sum = 0.0
    for batch, real in evaluation_batches(sequences, config.eval_batch_size, config.length_bucket,
                                          rows=process_rows(config.eval_batch_size)):
        batch_probabilities, losses = eval_step(params, shard_batch(batch, mesh))
        batch_probabilities = _to_host(batch_probabilities)[: len(real)]
        if probabilities is None:
            probabilities = np.zeros((len(sequences), batch_probabilities.shape[1]), np.float32)
        probabilities[real] = batch_probabilities
        loss_sum += float(_to_host(losses)[: len(real)].sum())
    assert probabilities is not None  # a split is never empty (read_sign_sequences refuses)
    scalars = {f"validation/{k}": v for k, v in accuracy_scalars(probabilities, sequences.labels).items()}
    scalars["validation/loss"] = loss_sum / len(sequences)
    return scalars, probabilities


def majority_baseline(train: SignSequences, validation: SignSequences) -> float:
    """Validation accuracy of always answering the training split's most frequent sign."""
    majority = int(np.bincount(train.labels).argmax())
    return float(np.mean(validation.labels == majority))


def train_and_evaluate(config: SignsConfig, workdir: str | Path) -> dict[str, Any]:
    """Train one fold (resuming from `workdir` when it holds checkpoints of this config) and return
    the final metrics of the slow weights on the fold's validation participants."""
    # before anything compiles: every fold (and the next run) compiles the same steps, and on a
    # small CPU machine compiling them is a large share of a short fold's time
    enable_compilation_cache()
    maybe_initialize_distributed()
    workdir = Path(workdir)
    fold = prepare_fold(config)
    config = fold.config
    mesh = make_mesh()
    check_batch_size(config.batch_size, mesh)
    check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    if jax.process_index() == 0:
        with RunCheckpoints(workdir, keep=config.keep_checkpoints) as existing:
            existing.check_config(config)  # before anything in the workdir is overwritten
        dump_config(config, workdir)

    dtype = resolve_compute_dtype(config.compute_dtype)
    rngs = nnx.Rngs(params=config.seed, dropout=config.seed + 1)
    model = build_sign_model(config.model_config(fold.n_classes), rngs=rngs, dtype=dtype)
    graphdef, params, rng_state = nnx.split(model, nnx.Param, ...)
    optimizer = build_optimizer(config, len(fold.train))
    # separate buffers: the step donates its state, and one buffer cannot be donated twice
    lookahead = optax.LookaheadParams(params, jax.tree.map(jnp.copy, params))
    state = replicate(
        {"step": jnp.int32(0), "fast": lookahead.fast, "slow": lookahead.slow, "opt_state": optimizer.init(lookahead)},
        mesh,
    )
    train_step = make_train_step(graphdef, rng_state, optimizer, config, learning_rate_schedule(config, len(fold.train)),
                                 mesh)
    eval_step = make_eval_step(graphdef, rng_state, config, mesh)
    batches = SignBatches(fold.train, config.batch_size, config.length_bucket, config.max_frames, config.seed,
                          rows=process_rows(config.batch_size))
    last_probabilities: list[np.ndarray] = []

    def evaluate(state: dict[str, Any]) -> dict[str, float]:
        scalars, probabilities = evaluate_split(eval_step, state["slow"], fold.validation, config, mesh)
        last_probabilities[:] = [probabilities]
        return scalars

    outcome = run_training_loop(
        config=config,  # type: ignore[arg-type]  # the loop reads the run-driving fields SignsConfig shares
        workdir=workdir,
        mesh=mesh,
        state=state,
        train_step=train_step,
        batches=batches,
        evaluate=evaluate,
        eval_every=config.eval_every or steps_per_epoch(config, len(fold.train)),
        score_key=SCORE_KEY,
        description=f"signs fold {config.fold}",
    )
    evaluation = outcome.last_evaluation or {}
    metrics: dict[str, Any] = {
        "fold": config.fold,
        "step": outcome.step,
        "validation_accuracy": evaluation.get(SCORE_KEY),
        "validation_top3_accuracy": evaluation.get("validation/top3_accuracy"),
        "validation_loss": evaluation.get("validation/loss"),
        "majority_baseline": majority_baseline(fold.train, fold.validation),
        "best_validation_accuracy": outcome.best_score,
        "best_step": outcome.best_step,
        "train_loss": outcome.last_train.get("loss"),
        "n_train": len(fold.train),
        "n_validation": len(fold.validation),
        "n_train_participants": int(len(np.unique(fold.train.participant_ids))),
        "n_validation_participants": int(len(np.unique(fold.validation.participant_ids))),
        "y_scale": config.y_scale,
        "total_steps": config.total_steps,
        "compute_dtype": jnp.dtype(dtype).name,
        "resumed_from_step": outcome.resumed_from,
        "steps_run": outcome.steps_run,
        "train_seconds": round(outcome.train_seconds, 3),
        "n_devices": int(mesh.devices.size),
        **outcome_notes(outcome),
    }
    if jax.process_index() == 0:
        with atomic_path(workdir / VALIDATION_PREDICTIONS_FILE) as tmp:
            with tmp.open("wb") as handle:
                np.savez(handle, sequence_ids=fold.validation.sequence_ids, labels=fold.validation.labels,
                         probabilities=last_probabilities[0], fold=np.int64(config.fold))
        atomic_write_text(workdir / FINAL_METRICS_FILE, strict_json(metrics, indent=2) + "\n")
    return metrics


def train_folds(config: Any, root: str | Path, folds: Sequence[int] | None = None) -> dict[str, Any]:
    """Train each of `folds` (default all) into `root/fold_<i>`, one after another, then pool the
    out-of-fold predictions of every finished fold under `root` (also those trained earlier, or by
    other processes: one pipeline step per fold). A fold that finished already
    resumes at its end and only re-evaluates."""
    folds = list(range(config.n_folds)) if folds is None else list(folds)
    results = {}
    for fold in folds:
        results[fold] = train_and_evaluate(dataclasses.replace(config, fold=fold), fold_workdir(root, fold))
    metrics = {"folds": {str(f): r for f, r in results.items()}}
    finished = [w for w in fold_workdirs(root) if (w / VALIDATION_PREDICTIONS_FILE).is_file()]
    metrics.update(collect_out_of_fold(finished).metrics())
    atomic_write_text(Path(root) / OOF_METRICS_FILE, strict_json(metrics, indent=2) + "\n")  # no NaN token
    return metrics


# --- reading a trained fold back ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainedFold:
    """A fold's model (float32, deterministic use) with what its inputs need."""

    model: SignClassifier
    config: SignsConfig
    step: int
    workdir: Path


def _restore_weights(target: Any, saved: Any, where: str) -> Any:
    """`target` (a pure dict of arrays) with each leaf replaced by the saved array at its path."""

    def lookup(path: tuple, leaf: Any) -> Any:
        node = saved
        keys = [str(getattr(entry, "key", getattr(entry, "idx", entry))) for entry in path]
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                raise SignpipeError(f"{where}: no weights at {'/'.join(keys)}")
            node = node[key]
        if isinstance(node, Mapping) and set(node) == {"value"}:
            node = node["value"]
        value = np.asarray(node)
        if value.shape != leaf.shape:
            raise SignpipeError(f"{where}: weights at {'/'.join(keys)} are {value.shape}, the model expects {leaf.shape}")
        return jnp.asarray(value, dtype=leaf.dtype)

    return jax.tree_util.tree_map_with_path(lookup, target)


def load_trained_fold(workdir: str | Path, which: str = "last") -> TrainedFold:
    """The slow (Lookahead) weights of a fold run: its last checkpoint, or its best by validation
    accuracy (`which="best"`; an optimistic choice, since that is the score it is chosen by)."""
    if which not in ("last", "best"):
        raise ConfigError(f"which={which!r}: expected 'last' or 'best'")
    workdir = Path(workdir)
    if not has_checkpoints(workdir):
        raise SignpipeError(f"{workdir}: no checkpoints (expected the workdir of a signs training run)")
    with RunCheckpoints(workdir, read_only=True) as checkpoints:
        step = checkpoints.latest_step()
        if step is None:
            raise SignpipeError(f"{workdir}: no complete checkpoint found")
        config = config_from_dict(checkpoints.saved_config(step))
        if which == "best":
            best = checkpoints.saved_progress(step).get("best_step")
            step = int(best) if best in checkpoints.all_steps() else step
        _, saved = checkpoints.restore_unstructured(step)
    if not isinstance(saved, Mapping) or "slow" not in saved:
        raise SignpipeError(f"{workdir} step {step}: the checkpoint holds no slow weights")
    n_classes = _saved_classes(saved["slow"], config.subcenters, f"{workdir} step {step}")
    model = build_sign_model(config.model_config(n_classes), rngs=nnx.Rngs(params=0, dropout=1))
    target = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(target, _restore_weights(nnx.to_pure_dict(target), saved["slow"], f"{workdir} step {step}"))
    nnx.update(model, target)
    return TrainedFold(model, config, step, workdir)


def _saved_classes(saved: Any, subcenters: int, where: str) -> int:
    """Classes of a saved head (its centres are [width, classes * subcenters])."""
    try:
        centres = saved["head"]["centres"]
    except (KeyError, TypeError):
        raise SignpipeError(f"{where}: no head/centres weights in the checkpoint") from None
    centres = centres["value"] if isinstance(centres, Mapping) else centres
    return int(np.asarray(centres).shape[1]) // subcenters


def fold_outputs_function(fold: TrainedFold):
    """Jitted raw frames `[T, 543, 3]` -> class probabilities `[C]` of one fold model: what its part
    of the exported graph computes."""
    config, model = fold.config, fold.model

    @jax.jit
    def outputs(frames: jax.Array) -> jax.Array:
        x, mask = features.graph_inputs(frames, config.y_scale, config.max_frames)
        return jnp.squeeze(class_probabilities(model(x, mask, deterministic=True), config.arcface_scale), axis=0)

    return outputs
