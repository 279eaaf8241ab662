"""Knowledge distillation: a small student learns from a frozen teacher's per-frame decisions.

    signpipe train distill --shards shards/ --workdir runs/student --preset smoke teacher=runs/teacher

The seed's recipe (REFERENCE.md section 2, "Distillation"): the large teacher is frozen; on each
training batch it labels every real frame with its argmax class (a hard target, as in DeiT); the
student has a second linear head, the KD head, trained with cross-entropy against those targets,
while its CTC head keeps the CTC loss on the phrase:

    loss = CTC / label length + kd_weight * mean cross-entropy over real frames   (kd_weight 10)

The seed found that one head serving both losses hurt, hence the separate KD head; only the CTC
head is used at inference and export. The teacher sees exactly the student's (augmented, and
with `alignments` set, CutMix-mixed) inputs, so its targets follow every augmentation.

The student may start from every k-th layer of a deeper model of the same width
(`init_layers_from`): layers k-1, 2k-1, ... (so the last copied layer is the one that fed the
deeper model's final norm when its depth is a multiple of k), with its stem, final norm and,
from a finetuned model, its CTC head (copied into both student heads).

Everything else (data, optimizer, EMA, evaluation of the CTC head, checkpoints, resume) is
finetuning's, through `signpipe.fingerspelling.noisy_student.run_ctc_stage`. The teacher is not part of the
checkpointed state: a resumed run reloads it from its workdir.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from signpipe.errors import ConfigError, SignpipeError
from signpipe.fingerspelling.model import CTCModel, build_ctc_model
from signpipe.train.checkpoint import RunCheckpoints
from signpipe.fingerspelling.finetune import (
    _fill_from_saved,
    ctc_loss_per_sequence,
    load_encoder_weights,
    load_finetuned_model,
    weighted_mean,
)
from signpipe.train.mesh import batch_sharding, replicate, replicated_sharding
from signpipe.fingerspelling.config import TEACHER_CHECKPOINTS, DistillConfig, NoisyStudentConfig  # noqa: F401
from signpipe.fingerspelling.noisy_student import check_data_dirs, run_ctc_stage
from signpipe.train.optim import ema_decay_at, learning_rate_schedule, update_ema

STAGE = "distill"


def hard_target_cross_entropy(
    logits: jax.Array, targets: jax.Array, mask: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy of `logits` [B, T, C] against class `targets` [B, T] over the real frames
    of the real sequences, and the share of those frames whose argmax is the target."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(log_probs, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    frame_weights = mask.astype(jnp.float32) * weights[:, None]
    total = jnp.maximum(jnp.sum(frame_weights), 1.0)
    agreement = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    return jnp.sum(nll * frame_weights) / total, jnp.sum(agreement * frame_weights) / total


def make_distill_step(
    graphdef: Any,
    rng_state: Any,
    optimizer: optax.GradientTransformation,
    config: DistillConfig,
    mesh: Mesh,
    teacher: CTCModel,
):
    """The jitted distillation step, `(state, batch) -> (state, scalars)`: the teacher's argmax on
    the batch, then the student's CTC + kd_weight x KD loss, AdamW and EMA as in finetuning."""
    blank = config.model_config().blank_index
    schedule = learning_rate_schedule(config)
    base_key = jax.random.key(config.seed)
    teacher_graphdef, teacher_params, teacher_rest = nnx.split(teacher, nnx.Param, ...)

    def loss_fn(params: Any, batch: Mapping[str, jax.Array], targets: jax.Array, key: jax.Array):
        model = nnx.merge(graphdef, params, jax.tree.map(lambda leaf: leaf, rng_state))
        nnx.reseed(model, dropout=key)
        ctc_logits, kd_logits = model.logits_with_kd(batch["inputs"], batch["mask"], deterministic=False)
        ctc = weighted_mean(ctc_loss_per_sequence(ctc_logits, batch, blank), batch["weights"])
        kd, agreement = hard_target_cross_entropy(kd_logits, targets, batch["mask"], batch["weights"])
        return ctc + config.kd_weight * kd, (ctc, kd, agreement)

    def train_step(state: dict[str, Any], batch: Mapping[str, jax.Array], teacher_params: Any):
        teacher_model = nnx.merge(teacher_graphdef, teacher_params, teacher_rest)
        teacher_logits = teacher_model(batch["inputs"], batch["mask"], deterministic=True)
        targets = jax.lax.stop_gradient(jnp.argmax(teacher_logits, axis=-1))
        step = state["step"]
        (loss, (ctc, kd, agreement)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state["params"], batch, targets, jax.random.fold_in(base_key, step)
        )
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        ema = update_ema(state["ema_params"], params, ema_decay_at(step, config.ema_decay))
        new_state = {"step": step + 1, "params": params, "opt_state": opt_state, "ema_params": ema}
        scalars = {
            "loss": loss,
            "ctc_loss": ctc,
            "kd_loss": kd,
            "kd_agreement": agreement,
            "grad_norm": optax.tree.norm(grads),
            "learning_rate": schedule(step),
        }
        return new_state, scalars

    replicated = replicated_sharding(mesh)
    jitted = jax.jit(
        train_step,
        in_shardings=(replicated, batch_sharding(mesh), replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    placed_teacher = replicate(teacher_params, mesh)
    return lambda state, batch: jitted(state, batch, placed_teacher)


def init_from_deeper_model(model: CTCModel, workdir: str | Path, stride: int = 0) -> list[int]:
    """Load every `stride`-th encoder layer (and stem, final norm, CTC head if any) of the model in
    `workdir`'s latest checkpoint into `model`; returns the source layer index of each student layer."""
    where = f"init_layers_from={workdir}"
    if not Path(workdir).is_dir():
        raise ConfigError(f"{where}: directory not found (expected the workdir of a training run)")
    with RunCheckpoints(workdir, read_only=True) as checkpoints:
        _, saved = checkpoints.restore_unstructured()
    weights = saved.get("ema_params") or saved.get("params")
    if not isinstance(weights, Mapping) or not isinstance(weights.get("encoder"), Mapping):
        raise ConfigError(f"{where}: its checkpoint holds no encoder weights (params/encoder or ema_params/encoder)")
    encoder = weights["encoder"]
    source_layers = encoder.get("layers", {})
    n_source, n_student = len(source_layers), model.config.layers
    stride = stride or n_source // n_student
    chosen = [(i + 1) * stride - 1 for i in range(n_student)]
    if stride < 1 or chosen[-1] >= n_source:
        raise ConfigError(
            f"{where}: {n_source} layers cannot give the student's {n_student} with stride {stride} "
            f"(need at least {n_student * max(stride, 1)} layers)"
        )
    mapped_encoder = {**encoder, "layers": {str(i): source_layers[str(k)] for i, k in enumerate(chosen)}}
    target = nnx.state(model.encoder, nnx.Param)
    nnx.replace_by_pure_dict(target, _fill_from_saved(nnx.to_pure_dict(target), mapped_encoder, where))
    nnx.update(model.encoder, target)
    head = weights.get("ctc_head")
    if isinstance(head, Mapping):
        for student_head in (model.ctc_head, model.kd_head):
            if student_head is None:
                continue
            head_state = nnx.state(student_head, nnx.Param)
            nnx.replace_by_pure_dict(head_state, _fill_from_saved(nnx.to_pure_dict(head_state), head, where))
            nnx.update(student_head, head_state)
    return chosen


def build_student(config: DistillConfig) -> CTCModel:
    """The student with its KD head, from fresh weights, `init_from`'s encoder or every k-th layer
    of `init_layers_from`."""
    model = build_ctc_model(
        config.model_config(), rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1), with_kd_head=True
    )
    if config.init_from:
        load_encoder_weights(model, config.init_from)
    if config.init_layers_from:
        init_from_deeper_model(model, config.init_layers_from, config.init_layer_stride)
    return model


def load_teacher(config: DistillConfig) -> tuple[CTCModel, int]:
    """The frozen teacher (EMA weights) and its checkpoint step, checked against the student."""
    teacher, teacher_config, step = load_finetuned_model(config.teacher, which=config.teacher_checkpoint, use_ema=True)
    student, teacher_model = config.model_config(), teacher_config.model_config()
    for name in ("n_classes", "n_features"):
        if getattr(student, name) != getattr(teacher_model, name):
            raise ConfigError(
                f"teacher={config.teacher}: its model has {name}={getattr(teacher_model, name)}, the student "
                f"{getattr(student, name)}; the teacher's frames and classes must be the student's"
            )
    return teacher, step


def train_and_evaluate(config: DistillConfig, workdir: str | Path) -> dict[str, Any]:
    """Distill `config.teacher` into the student (resuming from `workdir` when it holds
    checkpoints of this config); returns finetuning's final metrics of the student's CTC head
    plus the last KD loss and teacher agreement."""
    if not isinstance(config, DistillConfig):
        raise ConfigError(f"distill needs a DistillConfig, got {type(config).__name__}")
    check_data_dirs(config)
    if not config.teacher:
        raise ConfigError("distill: no teacher (pass teacher=WORKDIR, a finetuning or noisy-student run)")
    if not Path(config.teacher).is_dir():
        raise SignpipeError(f"teacher={config.teacher}: directory not found (expected the workdir of a finetuning run)")
    teacher_info: dict[str, Any] = {}

    def make_step(graphdef: Any, rng_state: Any, optimizer: optax.GradientTransformation, mesh: Mesh):
        teacher, teacher_step = load_teacher(config)
        teacher_info.update(teacher=str(Path(config.teacher).absolute()), teacher_step=int(teacher_step),
                            teacher_model=teacher.config.name, kd_weight=config.kd_weight)
        return make_distill_step(graphdef, rng_state, optimizer, config, mesh, teacher)

    return run_ctc_stage(
        config,
        workdir,
        build=lambda: build_student(config),
        make_step=make_step,
        description="distill",
        extra_metrics=lambda: teacher_info,
    )
