"""The seed's optimizer: Ranger (RAdam inside Lookahead) with the 1e-6 -> 1e-4 -> 1e-7 schedule.

- RAdam rectifies Adam's early steps (its second-moment estimate is unreliable for the first few
  hundred steps), so the run needs no long warmup to be stable; `threshold` 5 is where it switches
  from momentum SGD to the adaptive step, as in Ranger.
- Lookahead keeps a slow copy of the weights and every `sync_period` (6) fast steps moves it half
  way (`slow_step_size` 0.5) towards the fast weights, then restarts the fast weights there. The
  slow weights are the ones to evaluate and export (optax's convention; the fast ones wander).
- Betas (0.95, 0.999) and eps 1e-5 are Ranger's defaults; the seed used no weight decay and no
  gradient clipping (`clip_norm` 0 keeps it off).
- Schedule: linear warmup from `initial` (1e-6) to `peak` (1e-4) over the warmup steps, then
  cosine decay to `end` (1e-7) at the last step: the seed's 5 warmup epochs of 100.
"""

from __future__ import annotations

import optax

from signpipe.errors import ConfigError


def seed_schedule(initial: float, peak: float, end: float, warmup_steps: int, total_steps: int) -> optax.Schedule:
    """initial -> peak (linear, `warmup_steps`) -> end (cosine, until `total_steps`)."""
    if not 0 <= warmup_steps < total_steps:
        raise ConfigError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps}")
    if min(initial, peak, end) < 0 or peak <= 0:
        raise ConfigError(f"learning rates must be non-negative with a positive peak, got {initial}, {peak}, {end}")
    return optax.warmup_cosine_decay_schedule(
        init_value=initial, peak_value=peak, warmup_steps=warmup_steps, decay_steps=total_steps, end_value=end
    )


def ranger(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.95,
    b2: float = 0.999,
    eps: float = 1e-5,
    sync_period: int = 6,
    slow_step_size: float = 0.5,
    clip_norm: float = 0.0,
) -> optax.GradientTransformation:
    """RAdam + Lookahead. Its `init`/`update` take `optax.LookaheadParams(fast, slow)` as params
    and the gradients of the fast weights as updates."""
    if sync_period < 1:
        raise ConfigError(f"lookahead sync_period must be at least 1, got {sync_period}")
    if not 0 < slow_step_size <= 1:
        raise ConfigError(f"lookahead slow_step_size must be in (0, 1], got {slow_step_size}")
    fast = optax.radam(learning_rate, b1=b1, b2=b2, eps=eps, threshold=5.0)
    if clip_norm > 0:
        fast = optax.chain(optax.clip_by_global_norm(clip_norm), fast)
    return optax.lookahead(fast, sync_period=sync_period, slow_step_size=slow_step_size)
