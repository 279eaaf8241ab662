"""Output heads on top of the encoder, and the CTC model that the fingerspelling stages train.

Heads are separate modules (not a width argument of the encoder) so pretraining can save an
encoder without any head, finetuning can add one, and distillation can add a second: the seed
found that sharing one head between the CTC loss and the teacher's hard targets hurt, so the
student gets its own KD head. The isolated-signs classifier will add its pooled ArcFace head here.
"""

from __future__ import annotations

import jax
from flax import nnx

from signpipe.errors import ConfigError
from signpipe.fingerspelling.model.encoder import WEIGHT_INIT, Encoder
from signpipe.fingerspelling.model.sizes import ModelConfig


class FrameClassifierHead(nnx.Module):
    """Per-frame linear map from encoder features [B, T, width] to class logits [B, T, n_classes]."""

    def __init__(self, width: int, n_classes: int, *, rngs: nnx.Rngs):
        self.projection = nnx.Linear(width, n_classes, kernel_init=WEIGHT_INIT, rngs=rngs)

    def __call__(self, features: jax.Array) -> jax.Array:
        return self.projection(features)


class CTCHead(FrameClassifierHead):
    """Logits over the characters plus the CTC blank (the last class, 59 of 60)."""


class KDHead(FrameClassifierHead):
    """Student logits trained with cross-entropy against the teacher's per-frame argmax."""


class CTCModel(nnx.Module):
    """Encoder + CTC head (+ optional KD head): frames [B, T, F] -> per-frame logits [B, T, C]."""

    def __init__(self, encoder: Encoder, ctc_head: CTCHead, kd_head: KDHead | None = None):
        self.encoder = encoder
        self.ctc_head = ctc_head
        self.kd_head = kd_head

    @property
    def config(self) -> ModelConfig:
        return self.encoder.config

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, *, deterministic: bool) -> jax.Array:
        """CTC logits only: the inference and export path, identical with or without a KD head."""
        return self.ctc_head(self.encoder(x, mask, deterministic=deterministic))

    def logits_with_kd(
        self, x: jax.Array, mask: jax.Array | None = None, *, deterministic: bool
    ) -> tuple[jax.Array, jax.Array]:
        """(CTC logits, KD logits) from one encoder pass, for the distillation loss."""
        if self.kd_head is None:
            raise ConfigError("this CTC model has no KD head; build it with with_kd_head=True to distill into it")
        features = self.encoder(x, mask, deterministic=deterministic)
        return self.ctc_head(features), self.kd_head(features)


def build_ctc_model(config: ModelConfig, *, rngs: nnx.Rngs, with_kd_head: bool = False) -> CTCModel:
    """Fresh weights for `config`; rngs needs a `params` stream and (for training) a `dropout` one."""
    encoder = Encoder(config, rngs=rngs)
    ctc_head = CTCHead(config.width, config.n_classes, rngs=rngs)
    kd_head = KDHead(config.width, config.n_classes, rngs=rngs) if with_kd_head else None
    return CTCModel(encoder, ctc_head, kd_head)
