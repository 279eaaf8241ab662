"""The seed's optimizer: AdamW with warmup and a decaying schedule, global-norm clipping, and an
exponential moving average (EMA) of the parameters that validation and export use.

Why these choices (REFERENCE.md section 2):
- Weight decay only on matrices and convolution kernels (ndim > 1): decaying LayerNorm scales and
  biases pulls them toward 0, which changes what the layer computes rather than regularizing it.
- Clipping comes before AdamW in the chain, so the decay term is never clipped.
- EMA decay ramps up as min(decay, (1 + step) / (10 + step)): a fixed 0.993 from step 0 keeps the
  average stuck near the random initialization for hundreds of steps, which matters for short
  runs (the smoke preset) and costs nothing for long ones.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from signpipe.train.run_config import OptimizerConfig


def learning_rate_schedule(config: OptimizerConfig) -> optax.Schedule:
    """Linear warmup to `learning_rate`, then cosine decay to `end_learning_rate_fraction` of it at
    `total_steps` ("cosine"), or the one-cycle cosine up-then-down shape with the peak at the end of
    the warmup ("onecycle")."""
    peak = config.learning_rate
    if config.schedule == "onecycle":
        return optax.cosine_onecycle_schedule(
            transition_steps=config.total_steps,
            peak_value=peak,
            pct_start=max(config.warmup_steps, 1) / config.total_steps,
            div_factor=25.0,
            final_div_factor=1.0 / max(config.end_learning_rate_fraction, 1e-4) / 25.0,
        )
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=peak,
        warmup_steps=config.warmup_steps,
        decay_steps=config.total_steps,
        end_value=peak * config.end_learning_rate_fraction,
    )


def weight_decay_mask(params: Any) -> Any:
    """True for the leaves weight decay applies to: kernels, not biases or normalization scales."""
    return jax.tree.map(lambda leaf: jnp.ndim(leaf) > 1, params)


def build_optimizer(config: OptimizerConfig, params: Any) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.adamw(
            learning_rate_schedule(config),
            b1=config.adam_b1,
            b2=config.adam_b2,
            weight_decay=config.weight_decay,
            mask=weight_decay_mask(params),
        ),
    )


def ema_decay_at(step: jax.Array | int, decay: float) -> jax.Array:
    """The EMA decay used after `step` optimizer updates (ramped, see the module docstring)."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(jnp.float32(decay), (1.0 + step) / (10.0 + step))


def update_ema(ema: Any, params: Any, decay: jax.Array | float) -> Any:
    """ema <- decay * ema + (1 - decay) * params, leaf by leaf, in the parameters' dtype."""
    return jax.tree.map(lambda e, p: (e + (1.0 - decay) * (p - e)).astype(p.dtype), ema, params)
