"""The top-50 seed's isolated-signs classifier (Flax NNX) and its ArcFace loss.

    features [B, T, 772] -> MLP embedding (dropout 0.4 inside) -> + position embedding
      -> [CLS] + frames -> N transformer blocks (pre-LN, 16 heads, Swish FFN with dropout 0.4)
      -> CLS output -> dropout 0.4 -> Sub-center ArcFace head -> cosine to each class [B, 250]

Why this shape (seeds/isolated-signs-top50.md, REFERENCE.md section 3):
- One block with many heads was the seed's best; an MLP embedding before it lifts the 772
  hand-crafted features (positions, motion, hand distances) into the model width.
- Metric learning: the head scores a sequence by the cosine between its normalized embedding and
  each class's normalized centres, and the ArcFace loss adds an angular margin to the true class
  in training, so classes must be separated by an angle, not just by a logit. Sub-center ArcFace
  gives each class `subcenters` (k) centres and scores the nearest, so one sign performed in
  several ways (one or two hands, either hand) need not collapse onto one direction.
- Label smoothing 0.2 on top of the margin was the seed's last improvement.
- Dropout sits where the seed had it: inside the MLP embedding and the FFN, and on the embedding
  before the head; attention weights and residual branches are not dropped (the seed's attention
  ran with dropout 0).

Graph constraints (the exported TFLite model has a symbolic time axis, see `features`): the CLS
token is prepended with `concatenate` and read back with `split`, positions come from the mask
with a min-reduction (no cumulative sum) and are embedded with a one-hot product. The last block
computes its query for the CLS token only: the other tokens' outputs of the last block are never
used, so this gives the same output at a fraction of the cost.

Precision: weights are float32; `dtype` (bfloat16 under mixed precision) is the compute dtype of
the embedding and the blocks. Normalization of the head and the loss stay in float32.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from signpipe.errors import ConfigError
from signpipe.signs import features

WEIGHT_INIT = nnx.initializers.normal(0.02)
MASKED_SCORE = -1e9
"""Attention score of a padded key: exp() gives exactly 0, stays finite, fits bf16."""


@dataclasses.dataclass(frozen=True)
class SignModelConfig:
    """Shape and regularization of the classifier. `width` 384 with one block and three sub-centres
    is about 2.5M parameters, 5 MB as fp16: five folds fit the 40 MB limit with room to spare."""

    width: int = 384
    blocks: int = 1
    heads: int = 16
    embed_mult: int = 2
    """The MLP embedding is n_features -> embed_mult * width -> width."""
    ffn_mult: int = 2
    dropout: float = 0.4
    subcenters: int = 3
    n_classes: int = 250
    n_features: int = features.N_FEATURES
    max_frames: int = features.MAX_FRAMES

    def __post_init__(self) -> None:
        problems = []
        for name in ("width", "blocks", "heads", "embed_mult", "ffn_mult", "subcenters", "n_features", "max_frames"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_classes < 2:
            problems.append(f"n_classes must be at least 2, got {self.n_classes}")
        if self.heads >= 1 and self.width % self.heads:
            problems.append(f"width {self.width} is not divisible by heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if problems:
            raise ConfigError("signs model: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sinusoidal_table(length: int, width: int) -> np.ndarray:
    """`[length, width]` sin | cos position codes: the start of the learned position embedding."""
    half = width // 2
    angles = np.arange(length)[:, None] / np.power(10000.0, np.arange(half)[None, :] / max(half, 1))
    table = np.zeros((length, width), np.float32)
    table[:, :half], table[:, half : 2 * half] = np.sin(angles), np.cos(angles)
    return table


def frame_positions(mask: jax.Array, max_frames: int) -> jax.Array:
    """`[B, T]` position of each frame counted from the first valid one (the crop's start), clipped
    into the table; padded frames get some position, which the mask makes irrelevant."""
    index = jnp.arange(mask.shape[-1])
    first = jnp.min(jnp.where(mask, index, mask.shape[-1]), axis=-1, keepdims=True)
    return jnp.clip(index - first, 0, max_frames - 1)


class MLPEmbedding(nnx.Module):
    """features -> Linear -> LayerNorm -> Swish -> Dropout -> Linear -> LayerNorm -> Swish."""

    def __init__(self, config: SignModelConfig, dtype: Any, *, rngs: nnx.Rngs):
        hidden = config.embed_mult * config.width
        self.expand = nnx.Linear(config.n_features, hidden, kernel_init=WEIGHT_INIT, dtype=dtype, rngs=rngs)
        self.expand_norm = nnx.LayerNorm(hidden, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.project = nnx.Linear(hidden, config.width, kernel_init=WEIGHT_INIT, dtype=dtype, rngs=rngs)
        self.project_norm = nnx.LayerNorm(config.width, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        h = self.dropout(jax.nn.swish(self.expand_norm(self.expand(x))), deterministic=deterministic)
        return jax.nn.swish(self.project_norm(self.project(h)))


class Attention(nnx.Module):
    """Multi-head attention of `queries` over `tokens`, padded keys masked out."""

    def __init__(self, config: SignModelConfig, dtype: Any, *, rngs: nnx.Rngs):
        self.heads = config.heads
        self.head_width = config.width // config.heads
        make = lambda: nnx.Linear(config.width, config.width, kernel_init=WEIGHT_INIT, dtype=dtype, rngs=rngs)  # noqa: E731
        self.query, self.key, self.value, self.output = make(), make(), make(), make()

    def _heads(self, x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[:-1] + (self.heads, self.head_width))

    def __call__(self, queries: jax.Array, tokens: jax.Array, key_mask: jax.Array) -> jax.Array:
        query, key, value = self._heads(self.query(queries)), self._heads(self.key(tokens)), self._heads(self.value(tokens))
        scores = jnp.einsum("bqhd,bkhd->bhqk", query, key) * (self.head_width**-0.5)
        scores = jnp.where(key_mask[:, None, None, :], scores, jnp.asarray(MASKED_SCORE, scores.dtype))
        weights = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(value.dtype)
        attended = jnp.einsum("bhqk,bkhd->bqhd", weights, value)
        return self.output(attended.reshape(attended.shape[:-2] + (self.heads * self.head_width,)))


class TransformerBlock(nnx.Module):
    """Pre-LN block: x + Attention(LN(x)), then x + FFN(LN(x)), the FFN Linear-Swish-Dropout-Linear."""

    def __init__(self, config: SignModelConfig, dtype: Any, *, rngs: nnx.Rngs):
        hidden = config.ffn_mult * config.width
        self.attention_norm = nnx.LayerNorm(config.width, dtype=dtype, rngs=rngs)
        self.attention = Attention(config, dtype, rngs=rngs)
        self.ffn_norm = nnx.LayerNorm(config.width, dtype=dtype, rngs=rngs)
        self.expand = nnx.Linear(config.width, hidden, kernel_init=WEIGHT_INIT, dtype=dtype, rngs=rngs)
        self.contract = nnx.Linear(hidden, config.width, kernel_init=WEIGHT_INIT, dtype=dtype, rngs=rngs)
        self.ffn_dropout = nnx.Dropout(config.dropout, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array, *, cls_only: bool, deterministic: bool) -> jax.Array:
        """x [B, 1 + T, W] (CLS first), mask [B, 1 + T]; with `cls_only`, returns the CLS row [B, 1, W]."""
        normed = self.attention_norm(x)
        queries, residual = normed, x
        if cls_only:
            queries, _ = jnp.split(normed, [1], axis=1)
            residual, _ = jnp.split(x, [1], axis=1)
        h = residual + self.attention(queries, normed, mask)
        hidden = self.ffn_dropout(jax.nn.swish(self.expand(self.ffn_norm(h))), deterministic=deterministic)
        return h + self.contract(hidden)


class SubCenterArcFace(nnx.Module):
    """Cosine between the embedding and the nearest of each class's k centres: [B, W] -> [B, C]."""

    def __init__(self, width: int, n_classes: int, subcenters: int, *, rngs: nnx.Rngs):
        self.n_classes, self.subcenters = n_classes, subcenters
        bound = 1.0 / math.sqrt(width)
        self.centres = nnx.Param(
            jax.random.uniform(rngs.params(), (width, n_classes * subcenters), jnp.float32, -bound, bound)
        )

    def __call__(self, embedding: jax.Array) -> jax.Array:
        embedding = embedding.astype(jnp.float32)
        unit = embedding * jax.lax.rsqrt(jnp.maximum(jnp.sum(embedding * embedding, -1, keepdims=True), 1e-12))
        centres = self.centres[...]
        centres = centres * jax.lax.rsqrt(jnp.maximum(jnp.sum(centres * centres, 0, keepdims=True), 1e-12))
        cosine = (unit @ centres).reshape(embedding.shape[:-1] + (self.n_classes, self.subcenters))
        return jnp.max(cosine, axis=-1)


class SignClassifier(nnx.Module):
    """features [B, T, n_features] with mask [B, T] -> cosine to each class [B, n_classes]."""

    def __init__(self, config: SignModelConfig, *, rngs: nnx.Rngs, dtype: Any = jnp.float32):
        self.config = config
        self.dtype = dtype
        self.embedding = MLPEmbedding(config, dtype, rngs=rngs)
        self.positions = nnx.Param(jnp.asarray(sinusoidal_table(config.max_frames, config.width)))
        self.cls_token = nnx.Param(jnp.zeros((1, 1, config.width), jnp.float32))
        self.blocks = nnx.List([TransformerBlock(config, dtype, rngs=rngs) for _ in range(config.blocks)])
        self.final_norm = nnx.LayerNorm(config.width, dtype=dtype, rngs=rngs)
        self.head_dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.head = SubCenterArcFace(config.width, config.n_classes, config.subcenters, rngs=rngs)

    def embed(self, x: jax.Array, mask: jax.Array, *, deterministic: bool) -> jax.Array:
        """The CLS output [B, W] (before the head's dropout): the sequence's embedding."""
        mask = mask.astype(bool)
        h = self.embedding(x.astype(self.dtype), deterministic=deterministic)
        one_hot = frame_positions(mask, self.config.max_frames)[..., None] == jnp.arange(self.config.max_frames)
        h = h + (one_hot.astype(self.dtype) @ self.positions[...].astype(self.dtype))
        h = jnp.where(mask[..., None], h, jnp.zeros((), h.dtype))
        cls = jnp.broadcast_to(self.cls_token[...].astype(h.dtype), (h.shape[0], 1, h.shape[-1]))
        h = jnp.concatenate([cls, h], axis=1)
        mask = jnp.concatenate([jnp.ones((mask.shape[0], 1), bool), mask], axis=1)
        for i, block in enumerate(self.blocks):
            h = block(h, mask, cls_only=i == len(self.blocks) - 1, deterministic=deterministic)
        return jnp.squeeze(self.final_norm(h), axis=1)

    def __call__(self, x: jax.Array, mask: jax.Array, *, deterministic: bool) -> jax.Array:
        embedding = self.head_dropout(self.embed(x, mask, deterministic=deterministic), deterministic=deterministic)
        return self.head(embedding)


def build_sign_model(config: SignModelConfig, *, rngs: nnx.Rngs, dtype: Any = jnp.float32) -> SignClassifier:
    """Fresh weights for `config`; rngs needs `params` and (for training) `dropout` streams."""
    return SignClassifier(config, rngs=rngs, dtype=dtype)


# --- ArcFace ----------------------------------------------------------------------------------


def arcface_logits(cosine: jax.Array, labels: jax.Array, scale: float, margin: float) -> jax.Array:
    """`scale * cos(theta + margin)` for the true class, `scale * cos(theta)` for the others.

    Past theta = pi - margin, cos(theta + m) would rise again as theta grows; there the usual
    linear continuation `cos(theta) - m sin(m)` keeps the target logit decreasing in theta.
    """
    cosine = jnp.clip(cosine.astype(jnp.float32), -1.0 + 1e-7, 1.0 - 1e-7)
    sine = jnp.sqrt(1.0 - cosine * cosine)
    shifted = cosine * math.cos(margin) - sine * math.sin(margin)
    shifted = jnp.where(cosine > math.cos(math.pi - margin), shifted, cosine - math.sin(math.pi - margin) * margin)
    is_target = jax.nn.one_hot(labels, cosine.shape[-1], dtype=bool)
    return scale * jnp.where(is_target, shifted, cosine)


def arcface_loss(
    cosine: jax.Array, labels: jax.Array, scale: float, margin: float, label_smoothing: float
) -> jax.Array:
    """Per-sample cross-entropy of the margin logits against labels smoothed by `label_smoothing`
    (the true class gets 1 - s + s/C, every class s/C)."""
    logits = arcface_logits(cosine, labels, scale, margin)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, cosine.shape[-1]), label_smoothing)
    return optax.softmax_cross_entropy(logits, targets)


def class_probabilities(cosine: jax.Array, scale: float) -> jax.Array:
    """Inference scores: softmax of the scaled cosines, no margin (what the ensemble averages)."""
    return jax.nn.softmax(scale * cosine.astype(jnp.float32), axis=-1)
