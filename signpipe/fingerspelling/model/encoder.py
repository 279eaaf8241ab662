"""The seed's encoder: Conv1D stem, pre-LN transformer layers with rotary positions, final LayerNorm.

Three constraints shape this code:
- Padded frames never influence valid ones: they are zeroed before the stem convolution (whose
  window would otherwise reach across the boundary) and masked out as attention keys, so the
  outputs at valid frames do not depend on what the padding holds or how long it is.
- Data2vec 2.0 pretraining runs the stem on the full sequence but the layers on the visible tokens
  only, which keep their original time index; hence `embed` and `encode(..., positions=...)` are
  separate, and rotary angles come from explicit positions instead of the token order.
- The exported graph has a symbolic time axis (jax2tf, then TFLite). Integer indexing of an array
  carrying that axis lowers to a gather the TFLite converter rejects, so the code only splits,
  reshapes, broadcasts and contracts along time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from signpipe.fingerspelling.model.sizes import ModelConfig

WEIGHT_INIT = nnx.initializers.normal(0.02)
"""The seed initializes every projection (stem, attention, FFN, heads) from N(0, 0.02)."""

MASKED_SCORE = -1e9
"""Attention score of a padded key: exp() underflows to exactly 0, yet it stays finite (no NaN when
a row is fully masked) and fits bf16/fp16 ranges."""


def frame_mask(lengths: jax.Array, n_frames: int) -> jax.Array:
    """[B, n_frames] bool, True for the first `lengths[b]` frames: the mask every model call takes."""
    return jnp.arange(n_frames)[None, :] < jnp.asarray(lengths)[:, None]


def rotary_angles(positions: jax.Array, head_width: int, base: float) -> jax.Array:
    """Angles [B, T, head_width/2] of RoPE for each token's time index (not its slot in the array).

    Channel pair i turns at frequency base^(-2i/head_width), so q.k depends only on the difference
    of the two positions.
    """
    exponents = jnp.arange(head_width // 2, dtype=jnp.float32) * (2.0 / head_width)
    inverse_frequencies = jnp.power(jnp.float32(base), -exponents)
    return positions.astype(jnp.float32)[..., None] * inverse_frequencies


def apply_rotary(x: jax.Array, angles: jax.Array) -> jax.Array:
    """Rotate [B, T, H, Dh] queries or keys by [B, T, Dh/2] angles (halves paired, not interleaved)."""
    cos = jnp.expand_dims(jnp.cos(angles), axis=2)
    sin = jnp.expand_dims(jnp.sin(angles), axis=2)
    first, second = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)


class SelfAttention(nnx.Module):
    """Multi-head self-attention with RoPE on q/k and a key padding mask."""

    def __init__(self, width: int, heads: int, dropout: float, *, rngs: nnx.Rngs):
        self.heads = heads
        self.head_width = width // heads
        self.query = nnx.Linear(width, width, kernel_init=WEIGHT_INIT, rngs=rngs)
        self.key = nnx.Linear(width, width, kernel_init=WEIGHT_INIT, rngs=rngs)
        self.value = nnx.Linear(width, width, kernel_init=WEIGHT_INIT, rngs=rngs)
        self.output = nnx.Linear(width, width, kernel_init=WEIGHT_INIT, rngs=rngs)
        self.weights_dropout = nnx.Dropout(dropout, rngs=rngs)
        self.output_dropout = nnx.Dropout(dropout, rngs=rngs)

    def _split_heads(self, x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[:-1] + (self.heads, self.head_width))

    def __call__(
        self, x: jax.Array, angles: jax.Array, mask: jax.Array | None, *, deterministic: bool
    ) -> jax.Array:
        """mask [B, T] marks real keys; None (every key real) keeps the select out of exported graphs."""
        query = apply_rotary(self._split_heads(self.query(x)), angles)
        key = apply_rotary(self._split_heads(self.key(x)), angles)
        value = self._split_heads(self.value(x))
        scores = jnp.einsum("bqhd,bkhd->bhqk", query, key) * (self.head_width**-0.5)
        if mask is not None:
            scores = jnp.where(mask[:, None, None, :], scores, MASKED_SCORE)
        weights = self.weights_dropout(jax.nn.softmax(scores, axis=-1), deterministic=deterministic)
        attended = jnp.einsum("bhqk,bkhd->bqhd", weights, value)
        attended = attended.reshape(attended.shape[:-2] + (self.heads * self.head_width,))
        return self.output_dropout(self.output(attended), deterministic=deterministic)


class FeedForward(nnx.Module):
    def __init__(self, width: int, ffn_mult: int, dropout: float, *, rngs: nnx.Rngs):
        self.expand = nnx.Linear(width, width * ffn_mult, kernel_init=WEIGHT_INIT, rngs=rngs)
        self.contract = nnx.Linear(width * ffn_mult, width, kernel_init=WEIGHT_INIT, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        # tanh-approximate GELU: the seed's flax default, and a single builtin op in TFLite.
        hidden = jax.nn.gelu(self.expand(x), approximate=True)
        return self.dropout(self.contract(hidden), deterministic=deterministic)


class EncoderLayer(nnx.Module):
    """Pre-LN block; in training LayerDrop skips the whole block for a random subset of samples."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.attention_norm = nnx.LayerNorm(config.width, rngs=rngs)
        self.attention = SelfAttention(config.width, config.heads, config.dropout, rngs=rngs)
        self.ffn_norm = nnx.LayerNorm(config.width, rngs=rngs)
        self.ffn = FeedForward(config.width, config.ffn_mult, config.dropout, rngs=rngs)
        self.layerdrop = config.layerdrop
        self.layerdrop_rngs = rngs["dropout"].fork()

    def keep_mask(self, batch: int, *, deterministic: bool) -> jax.Array | None:
        """[B, 1, 1] 1.0/0.0 per sample, or None when nothing is dropped (eval, or rate 0).

        Not rescaled by 1/(1 - rate), as in the seed: a kept block contributes exactly what it
        contributes at eval time.
        """
        if deterministic or self.layerdrop == 0.0:
            return None
        keep = jax.random.bernoulli(self.layerdrop_rngs(), 1.0 - self.layerdrop, (batch, 1, 1))
        return keep.astype(jnp.float32)

    def __call__(
        self, x: jax.Array, angles: jax.Array, mask: jax.Array | None, *, deterministic: bool
    ) -> jax.Array:
        keep = self.keep_mask(x.shape[0], deterministic=deterministic)
        update = self.attention(self.attention_norm(x), angles, mask, deterministic=deterministic)
        x = x + (update if keep is None else keep.astype(update.dtype) * update)
        update = self.ffn(self.ffn_norm(x), deterministic=deterministic)
        return x + (update if keep is None else keep.astype(update.dtype) * update)


class Encoder(nnx.Module):
    """Frames [B, T, n_features] -> features [B, T, width]; `mask` [B, T] is True at real frames."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.stem = nnx.Conv(
            config.n_features,
            config.width,
            kernel_size=(config.stem_kernel,),
            padding="SAME",
            kernel_init=WEIGHT_INIT,
            rngs=rngs,
        )
        self.input_dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.layers = nnx.List([EncoderLayer(config, rngs=rngs) for _ in range(config.layers)])
        self.final_norm = nnx.LayerNorm(config.width, rngs=rngs)

    def embed(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """Stem over the full sequence. `jnp.where`, not a product, so NaN padding cannot leak."""
        if mask is not None:
            mask = mask.astype(bool)
            x = jnp.where(mask[..., None], x, jnp.zeros((), x.dtype))
        h = self.stem(x)
        if mask is not None:
            h = jnp.where(mask[..., None], h, jnp.zeros((), h.dtype))
        return h

    def encode(
        self,
        h: jax.Array,
        mask: jax.Array | None = None,
        positions: jax.Array | None = None,
        *,
        deterministic: bool,
        return_hidden: bool = False,
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        """Transformer layers over embedded tokens h [B, T, width].

        positions [B, T] int: each token's original time index (default 0..T-1), so a subset of
        tokens attends exactly as it would inside the full sequence. With `return_hidden`, also
        returns every layer's output stacked as [layers, B, T, width] (Data2vec targets).
        """
        if mask is not None:
            mask = mask.astype(bool)
            h = jnp.where(mask[..., None], h, jnp.zeros((), h.dtype))
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(h.shape[1])[None, :], h.shape[:2])
        angles = rotary_angles(positions, self.config.head_width, self.config.rope_base)
        h = self.input_dropout(h, deterministic=deterministic)
        hidden = []
        for layer in self.layers:
            h = layer(h, angles, mask, deterministic=deterministic)
            hidden.append(h)
        out = self.final_norm(h)
        if return_hidden:
            return out, jnp.stack(hidden)
        return out

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, *, deterministic: bool) -> jax.Array:
        """Frames to features; mask None means every frame is real (the exported one-sequence case)."""
        return self.encode(self.embed(x, mask), mask, deterministic=deterministic)
