"""`align_shards`: pseudo-align every phrase of a shard directory with a trained CTC model.

    align_shards("runs/teacher", "shards/", "runs/alignments")   # -> summary dict

The model is a finetuning (or noisy-student, or distillation) workdir, read through
`signpipe.fingerspelling.finetune.load_finetuned_model`: its best checkpoint, EMA weights, as validation
scored them. Each sequence goes through the same `featurize` as in training (so frame t of the
alignment is frame t of what training feeds the model), the model gives per-frame
log-probabilities, and `ctc_forced_align` places the phrase on them. Sequences are batched by
length and padded to multiples of `length_bucket` frames, so the model compiles for a handful of
shapes.

Every sequence of the requested splits gets a row in the artifact: one too short for its phrase
is flagged `impossible`, one the model barely supports `low_confidence`; CutMix then leaves both
out, and the summary counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from signpipe.fingerspelling.align.artifact import AlignedSequence, write_alignments
from signpipe.fingerspelling.align.viterbi import DEFAULT_MIN_CHARACTER_CONFIDENCE, DEFAULT_MIN_CONFIDENCE, ctc_forced_align
from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks import features
from signpipe.fingerspelling.shards import ShardSequence, load_split, read_checked_manifest
from signpipe.fingerspelling.model import CTCModel
from signpipe.fingerspelling.data import FEATURES_PER_FRAME, character_map_of, encode_phrase
from signpipe.train.batching import bucket_length

# the stages whose workdirs `load_finetuned_model` may be given register their configs on import
from signpipe.fingerspelling.finetune import load_finetuned_model

ProgressCallback = Callable[[int, int], None]
"""Called with (sequences aligned so far, total) after each batch."""


def make_log_prob_function(model: CTCModel) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A jitted `(inputs [B, T, 225], mask [B, T]) -> log-probabilities [B, T, C]` (numpy out)."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def log_probs(state: Any, inputs: jax.Array, mask: jax.Array) -> jax.Array:
        logits = nnx.merge(graphdef, state)(inputs, mask, deterministic=True)
        return jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)

    return lambda inputs, mask: np.asarray(log_probs(state, inputs, mask))


def align_sequences(
    log_prob_function: Callable[[np.ndarray, np.ndarray], np.ndarray],
    sequence_features: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    batch_size: int = 64,
    length_bucket: int = 32,
    blank: int,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_character_confidence: float = DEFAULT_MIN_CHARACTER_CONFIDENCE,
    progress: ProgressCallback | None = None,
) -> list:
    """Forced alignments (`SequenceAlignment`, input order) of featurized sequences `[T_i, 75, 3]`
    and their labels; batches are filled to `batch_size` rows so the last one compiles no new shape."""
    if batch_size < 1 or length_bucket < 1:
        raise ConfigError(f"batch_size and length_bucket must be positive, got {batch_size} and {length_bucket}")
    lengths = np.array([len(f) for f in sequence_features], dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    results: list = [None] * len(order)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        n_frames = bucket_length(int(lengths[chosen].max()), length_bucket)
        inputs = np.zeros((batch_size, n_frames, FEATURES_PER_FRAME), dtype=np.float32)
        frame_lengths = np.zeros(batch_size, dtype=np.int64)
        frame_lengths[: len(chosen)] = lengths[chosen]
        mask = np.arange(n_frames)[None, :] < frame_lengths[:, None]
        inputs[mask] = np.concatenate([sequence_features[i].reshape(lengths[i], FEATURES_PER_FRAME) for i in chosen])
        log_probs = log_prob_function(inputs, mask)[: len(chosen)]
        label_lengths = np.array([len(labels[i]) for i in chosen], dtype=np.int64)
        padded_labels = np.zeros((len(chosen), max(1, int(label_lengths.max()))), dtype=np.int64)
        padded_labels[np.arange(padded_labels.shape[1])[None, :] < label_lengths[:, None]] = np.concatenate(
            [labels[i] for i in chosen]
        )
        batch = ctc_forced_align(
            log_probs,
            lengths[chosen],
            padded_labels,
            label_lengths,
            blank=blank,
            min_confidence=min_confidence,
            min_character_confidence=min_character_confidence,
        )
        for row, index in enumerate(chosen):
            results[index] = batch.sequence(row)
        if progress is not None:
            progress(min(start + batch_size, len(order)), len(order))
    return results


def align_shards(
    checkpoint: str | Path,
    shards_dir: str | Path,
    out_dir: str | Path,
    *,
    splits: Sequence[str] = ("train",),
    batch_size: int = 64,
    length_bucket: int = 32,
    which: str = "best",
    use_ema: bool = True,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_character_confidence: float = DEFAULT_MIN_CHARACTER_CONFIDENCE,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Align every sequence of `splits` of `shards_dir` with the model of the workdir `checkpoint`,
    write the artifact into `out_dir` (`signpipe.fingerspelling.align.artifact`) and return its summary."""
    shards_dir = Path(shards_dir)
    if not splits:
        raise ConfigError("align: no splits given (expected e.g. train, validation)")
    manifest = read_checked_manifest(shards_dir, "alignment")
    model, config, step = load_finetuned_model(checkpoint, which=which, use_ema=use_ema)
    character_map = character_map_of(shards_dir, manifest)
    if max(character_map.values()) >= config.model_config().blank_index:
        raise SignpipeError(
            f"{shards_dir}: character map has indices up to {max(character_map.values())}, the model "
            f"({checkpoint}) emits {config.model_config().blank_index} characters and the blank"
        )
    sequences: list[tuple[str, ShardSequence]] = []
    for split in dict.fromkeys(splits):
        sequences.extend((split, seq) for seq in load_split(shards_dir, split))
    if not sequences:
        raise SignpipeError(f"{shards_dir}: splits {list(splits)} hold no sequences")
    labels = [
        encode_phrase(seq.label, character_map, f"{shards_dir} ({split}) sequence {seq.sequence_id}")
        for split, seq in sequences
    ]
    for (split, seq), label in zip(sequences, labels, strict=True):
        if label.size == 0:
            raise SignpipeError(f"{shards_dir} ({split}) sequence {seq.sequence_id}: empty phrase (expected 1+ characters)")
    featurized = [features.featurize(seq.frames, manifest["y_scale"], xp=np) for _, seq in sequences]
    alignments = align_sequences(
        make_log_prob_function(model),
        featurized,
        labels,
        batch_size=batch_size,
        length_bucket=length_bucket,
        blank=config.model_config().blank_index,
        min_confidence=min_confidence,
        min_character_confidence=min_character_confidence,
        progress=progress,
    )
    rows = [
        AlignedSequence(seq.sequence_id, split, seq.label, alignment)
        for (split, seq), alignment in zip(sequences, alignments, strict=True)
    ]
    metadata = {
        "model": str(Path(checkpoint).absolute()),
        "model_step": int(step),
        "model_size": config.model_config().name,
        "checkpoint": which,
        "ema_weights": bool(use_ema),
        "shards": str(shards_dir.absolute()),
        "splits": list(dict.fromkeys(splits)),
        "blank": config.model_config().blank_index,
        "min_confidence": float(min_confidence),
        "min_character_confidence": float(min_character_confidence),
    }
    return write_alignments(out_dir, rows, metadata)
