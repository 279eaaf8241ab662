"""The pieces of Data2vec 2.0 pretraining (REFERENCE.md section 2), as pure functions and modules.

The method, adapted to landmark frames: a teacher (an EMA of the student encoder) reads the whole
sequence; its targets are the mean of its top K layer outputs, each instance-normalized over time.
Every sample is repeated M times with different block masks (ratio R, blocks of a few frames); the
student encoder sees only the visible frames, each keeping its original time index for the rotary
embeddings, and a light depthwise-conv decoder fills the masked frames (noise at first) back in.
The loss is the MSE between the decoder's output and the targets at masked frames only.

Why it looks like this:
- Static shapes: every row of a batch keeps the same number of visible slots V (the most any row
  of that padded length can need), so the student's input is `[B*M, V, width]` whatever the
  sequence lengths; rows with fewer visible frames carry invalid slots, masked out as attention
  keys. Visible frames are gathered with `take_along_axis` and put back with a gather too (a
  cumulative count gives each visible frame its slot), so nothing scatters and nothing depends on
  data-dependent shapes. This gather exists in training only; export never sees it.
- The teacher runs once per sample, not once per mask: M masks share one set of targets, which is
  what makes M > 1 cheap (the paper's multi-mask trick).
- The stem convolution runs on the full, unmasked sequence (as wav2vec-style feature extractors
  do in Data2vec 2.0 for audio), so a visible frame next to a masked block sees one masked frame
  through its kernel; blocks of 5 keep most masked frames out of reach.
- Padded frames never count: statistics of the instance norm, the loss, the mask sampling and the
  decoder's convolutions all skip or zero them, so results do not depend on how a batch is padded.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from signpipe.fingerspelling.model.encoder import WEIGHT_INIT, Encoder
from signpipe.fingerspelling.model.sizes import ModelConfig

MASK_NOISE_STD = 0.01
"""Standard deviation of the noise that stands in for masked frames at the decoder's input
(Data2vec 2.0's default): small enough to carry no signal, nonzero so masked slots differ."""

INSTANCE_NORM_EPSILON = 1e-5


class FrameMasks(NamedTuple):
    """One sampled set of masks for a batch repeated M times (rows b*M .. b*M+M-1 are sample b).

    masked            [N, T] bool   valid frames whose features the decoder must predict
    visible           [N, T] bool   valid frames the student encoder reads
    visible_positions [N, V] int32  time index of each student slot (visible frames in time order)
    visible_valid     [N, V] bool   slots that hold a visible frame (the rest are padding)
    """

    masked: jax.Array
    visible: jax.Array
    visible_positions: jax.Array
    visible_valid: jax.Array

    @property
    def valid(self) -> jax.Array:
        return self.masked | self.visible


def visible_slots(n_frames: int, ratio: float) -> int:
    """V: student slots for sequences padded to `n_frames` (a full-length row keeps this many)."""
    return n_frames - math.floor(ratio * n_frames)


def masked_counts(lengths: jax.Array, ratio: float, n_frames: int) -> jax.Array:
    """Frames to mask per row: floor(ratio * length), raised where needed so that no row has more
    visible frames than the V slots (guards float rounding at full length)."""
    lengths = lengths.astype(jnp.int32)
    counts = jnp.floor(lengths.astype(jnp.float32) * jnp.float32(ratio)).astype(jnp.int32)
    return jnp.maximum(counts, lengths - visible_slots(n_frames, ratio))


def sample_frame_masks(
    key: jax.Array, valid: jax.Array, masks_per_sample: int, ratio: float, block: int
) -> FrameMasks:
    """M block masks per sample over its valid frames, exactly floor(ratio * length) frames each.

    Blocks: frames are grouped into runs of `block` on a grid shifted by a random offset per row;
    each block gets one uniform score and the lowest-scoring valid frames are masked. Whole blocks
    go first, so the masked set is a union of blocks plus one partial block (cut at its start, so
    it stays contiguous) that makes the count exact; blocks touching the sequence's ends may be
    shorter. `valid` [B, T] marks real frames.
    """
    n_rows, n_frames = valid.shape[0] * masks_per_sample, valid.shape[1]
    valid = jnp.repeat(valid.astype(bool), masks_per_sample, axis=0)
    offset_key, score_key = jax.random.split(key)
    offsets = jax.random.randint(offset_key, (n_rows, 1), 0, block)
    block_index = (jnp.arange(n_frames)[None, :] + offsets) // block
    n_blocks = n_frames // block + 2
    block_scores = jax.random.uniform(score_key, (n_rows, n_blocks))
    scores = jnp.take_along_axis(block_scores, block_index, axis=1)
    scores = jnp.where(valid, scores, 2.0)  # above every uniform draw: padding is never masked
    # stable sort: inside a block (equal scores) earlier frames come first, so a partial block is
    # the block's first frames, contiguous
    order = jnp.argsort(scores, axis=1, stable=True)
    rank = jnp.argsort(order, axis=1)
    lengths = jnp.sum(valid, axis=1)
    n_masked = masked_counts(lengths, ratio, n_frames)
    masked = (rank < n_masked[:, None]) & valid
    visible = valid & ~masked
    n_slots = visible_slots(n_frames, ratio)
    time = jnp.arange(n_frames, dtype=jnp.int32)[None, :]
    # visible frames first, in time order; then the rest (their slots are marked invalid)
    slot_order = jnp.argsort(jnp.where(visible, time, n_frames + time), axis=1)
    positions = slot_order[:, :n_slots].astype(jnp.int32)
    visible_valid = jnp.arange(n_slots)[None, :] < jnp.sum(visible, axis=1)[:, None]
    return FrameMasks(masked, visible, positions, visible_valid)


def gather_visible(frames: jax.Array, masks: FrameMasks) -> jax.Array:
    """[N, T, D] -> [N, V, D]: the visible frames of each row, in time order."""
    return jnp.take_along_axis(frames, masks.visible_positions[..., None], axis=1)


def place_visible(slots: jax.Array, masks: FrameMasks) -> jax.Array:
    """[N, V, D] -> [N, T, D]: each visible frame's slot back at its time index, 0 elsewhere.

    A visible frame's slot is the number of visible frames before it (slots are in time order),
    so the inverse of `gather_visible` is a gather as well.
    """
    slot_of_frame = jnp.clip(jnp.cumsum(masks.visible, axis=1) - 1, 0, slots.shape[1] - 1)
    placed = jnp.take_along_axis(slots, slot_of_frame[..., None], axis=1)
    return jnp.where(masks.visible[..., None], placed, jnp.zeros((), slots.dtype))


def teacher_decay_at(step: jax.Array | int, start: float, end: float, steps: int) -> jax.Array:
    """EMA decay of the teacher after `step` updates: linear from `start` to `end` over `steps`,
    then `end` (the teacher follows the student closely early on, then settles)."""
    fraction = jnp.clip(jnp.asarray(step, jnp.float32) / jnp.float32(steps), 0.0, 1.0)
    return jnp.float32(start) + (jnp.float32(end) - jnp.float32(start)) * fraction


def instance_norm_over_time(x: jax.Array, valid: jax.Array, epsilon: float = INSTANCE_NORM_EPSILON) -> jax.Array:
    """Each channel of each sequence to zero mean, unit variance over its valid frames.

    x [..., B, T, D] (leading axes such as layers broadcast), valid [B, T]. Padded frames neither
    enter the statistics nor keep a value (they come out 0). Per-sequence statistics remove what a
    layer says about the whole sequence (signer, camera) and keep what changes frame to frame.
    """
    weights = valid.astype(x.dtype)[..., None]
    count = jnp.maximum(jnp.sum(weights, axis=-2, keepdims=True), 1.0)
    mean = jnp.sum(x * weights, axis=-2, keepdims=True) / count
    centred = (x - mean) * weights
    variance = jnp.sum(centred * centred, axis=-2, keepdims=True) / count
    return centred * jax.lax.rsqrt(variance + epsilon)


def targets_from_hidden(hidden: jax.Array, valid: jax.Array, top_layers: int) -> jax.Array:
    """Teacher layer outputs [layers, B, T, D] -> targets [B, T, D]: the mean of the top
    `top_layers`, each instance-normalized over time first (so no layer's scale dominates)."""
    return jnp.mean(instance_norm_over_time(hidden[-top_layers:], valid), axis=0)


def teacher_targets(teacher: Encoder, inputs: jax.Array, valid: jax.Array, top_layers: int) -> jax.Array:
    """Targets [B, T, width] from the teacher reading whole, unmasked sequences (no dropout)."""
    _, hidden = teacher.encode(teacher.embed(inputs, valid), valid, deterministic=True, return_hidden=True)
    return jax.lax.stop_gradient(targets_from_hidden(hidden, valid, top_layers))


def masked_mse(predictions: jax.Array, targets: jax.Array, masked: jax.Array, row_weights: jax.Array | None = None) -> jax.Array:
    """Mean squared error over the channels of masked frames only, averaged over those frames.

    `row_weights` [N] (0 for batch padding) scale whole rows; visible and padded frames never
    contribute, whatever the decoder outputs there.
    """
    frame_weights = masked.astype(jnp.float32)
    if row_weights is not None:
        frame_weights = frame_weights * row_weights.astype(jnp.float32)[:, None]
    errors = jnp.mean(jnp.square(predictions.astype(jnp.float32) - targets.astype(jnp.float32)), axis=-1)
    return jnp.sum(errors * frame_weights) / jnp.maximum(jnp.sum(frame_weights), 1.0)


class MaskedFrameDecoder(nnx.Module):
    """The light decoder: `layers` x (depthwise conv over time -> LayerNorm -> GELU) with residuals,
    then a linear map to the target width.

    Depthwise (one filter per channel) keeps it too weak to do the encoder's job: it can spread the
    encoded context over time into the masked blocks, while what goes into each channel has to be
    in the encoder's features already. Padded frames are zeroed before every convolution, so they
    never reach valid ones through the kernel.
    """

    def __init__(self, width: int, layers: int, kernel: int, *, rngs: nnx.Rngs):
        self.convolutions = nnx.List(
            [
                nnx.Conv(width, width, kernel_size=(kernel,), feature_group_count=width, padding="SAME", rngs=rngs)
                for _ in range(layers)
            ]
        )
        self.norms = nnx.List([nnx.LayerNorm(width, use_scale=False, use_bias=False, rngs=rngs) for _ in range(layers)])
        self.projection = nnx.Linear(width, width, kernel_init=WEIGHT_INIT, rngs=rngs)

    def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        keep = valid.astype(bool)[..., None]
        for convolution, norm in zip(self.convolutions, self.norms, strict=True):
            update = jax.nn.gelu(norm(convolution(jnp.where(keep, x, jnp.zeros((), x.dtype)))), approximate=True)
            x = x + update
        return self.projection(x)


class Data2vecModel(nnx.Module):
    """The student: the encoder that finetuning starts from, and the decoder used only here.

    The attribute name `encoder` is the checkpoint convention (`params/encoder`) that
    `signpipe.fingerspelling.finetune.load_encoder_weights` reads.
    """

    def __init__(self, config: ModelConfig, decoder_layers: int, decoder_kernel: int, *, rngs: nnx.Rngs):
        self.encoder = Encoder(config, rngs=rngs)
        self.decoder = MaskedFrameDecoder(config.width, decoder_layers, decoder_kernel, rngs=rngs)

    def predict_masked(
        self,
        inputs: jax.Array,
        valid: jax.Array,
        masks: FrameMasks,
        noise_key: jax.Array,
        *,
        deterministic: bool,
    ) -> jax.Array:
        """Decoder output [B*M, T, width] for inputs [B, T, F] under `masks` (M per sample).

        The stem runs once per sample; its output is repeated per mask, the visible frames go
        through the transformer at their original positions, masked frames re-enter as noise.
        """
        masks_per_sample = masks.masked.shape[0] // inputs.shape[0]
        embedded = jnp.repeat(self.encoder.embed(inputs, valid), masks_per_sample, axis=0)
        encoded = self.encoder.encode(
            gather_visible(embedded, masks),
            masks.visible_valid,
            masks.visible_positions,
            deterministic=deterministic,
        )
        noise = MASK_NOISE_STD * jax.random.normal(noise_key, embedded.shape, embedded.dtype)
        decoder_input = jnp.where(masks.masked[..., None], noise, place_visible(encoded, masks))
        return self.decoder(decoder_input, masks.valid)
