"""A trained CTC model -> one TFLite file the Kaggle scorer can call directly.

The graph takes the scorer's input as it comes, `inputs` float32 `[n_frames, len(selected_columns)]`
(the raw columns of `features.selected_columns()`, NaN where MediaPipe found nothing), and returns
`outputs` float32 `[n_frames, n_classes]`: a one-hot row per frame holding the class greedy CTC
decoding emits at that frame, or the blank where it emits nothing. The scorer's
`argmax(outputs, axis=1)` through the character map (the blank maps to "") then reads the phrase,
so collapsing happens in the graph (REFERENCE.md section 1). Inside: the y scale, point selection
and normalization (`signpipe.landmarks.features`, the very functions training uses), the encoder
and head, greedy decoding.

Conversion follows the route measured in REFERENCE.md section 4: jax2tf with a symbolic time axis
inside a `tf.function` whose `serving_default` signature names `inputs`/`outputs`, saved as a
SavedModel, then `TFLiteConverter`. Two operations needed a convertible form here:
- `jnp.argmax` lowers to a two-operand reduce the converter cannot legalize, so the argmax is the
  smallest index holding the row maximum (`first_argmax`): same value, same tie rule.
- Greedy's "differs from the previous frame" test cannot slice the symbolic time axis (`x[:-1]`
  lowers to a dynamic gather the converter rejects), so it compares with `roll` and treats frame 0
  apart (`greedy_ctc_rows`).

Weights are `tf.Variable`s that every call of the model reads, so a graph with several copies of
the model (the "fast" graph) stores them once.

Graphs (`graph=`):
- "dynamic": one model with a symbolic T. With shapes unknown until the call, the interpreter
  cannot plan or specialize the model ahead; it ran 1.5-2.5x slower than fixed-length copies of
  the same model (REFERENCE.md section 4, `benchmarks/tflite_latency.py`).
- "fast": the same model at fixed lengths (`buckets`): features are computed at the true length,
  zero-padded to the smallest bucket that holds them, run through a fixed-shape copy of the model
  with a padding mask, and cut back to the true length before decoding; longer inputs fall back to
  the dynamic model. The encoder masks padded frames out of attention and the stem (see
  `signpipe.fingerspelling.model.encoder`), so the outputs are those of the dynamic graph.

Quantization (`quantize=`): "none" (fp32), "fp16" (weights stored as fp16, computed in fp32: half
the size at about 1e-3 relative error) and "int8" (dynamic-range: int8 weights, about 0.3x the
size at a few percent error).

"auto" (the default graph) picks "fast" except for fp16. The interpreter frees a control-flow
branch's memory after each call unless built with `experimental_preserve_all_tensors`, which the
scorer does not set; an fp16 model then re-expands every branch's fp16 weights to fp32 at every
call (measured on `small`: about 90 ms per call at 32 frames instead of about 25 ms), and the
extra model copies also take it past 40 MB. fp32 and dynamic-range int8 weights are used as
stored, so their fast graphs are about twice as fast as the dynamic one
(`benchmarks/tflite_latency.py`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from signpipe.data.atomic import check_writable_file
from signpipe.errors import ConfigError, SignpipeError
from signpipe.export.bundle import INPUT_NAME, OUTPUT_NAME, SIGNATURE, write_bundle
from signpipe.landmarks import features
from signpipe.fingerspelling.model import CTCModel

QUANTIZATIONS = ("none", "fp16", "int8")
GRAPHS = ("auto", "fast", "dynamic")
DEFAULT_BUCKETS: tuple[int, ...] = (32, 64, 128, 192, 256, 384, 512)
"""Fixed lengths of the fast graph. Padding is at most half the compute (just past 64 frames) and
at most a third past 128; each bucket adds its ops and tensor descriptions to the file (about
0.3 MB for `small` at fp32/fp16, 1 MB at int8), not its weights."""


# --- the functions inside the graph (jax.numpy, convertible with a symbolic time axis) ----------


def input_features(columns: jax.Array, y_scale: float) -> jax.Array:
    """Scorer rows `[T, 3 * 96]` in `selected_columns()` order -> model input `[T, 225]`."""
    frames = features.frames_from_columns(columns, xp=jnp)
    return jnp.reshape(features.featurize(frames, y_scale, xp=jnp), (-1, features.N_FEATURES))


def first_argmax(logits: jax.Array) -> jax.Array:
    """`argmax` over the last axis (first index on ties) as a max and a min reduction, which
    the TFLite converter legalizes (a plain `jnp.argmax` it does not)."""
    n_classes = logits.shape[-1]
    is_top = logits == jnp.max(logits, axis=-1, keepdims=True)
    return jnp.min(jnp.where(is_top, jnp.arange(n_classes, dtype=jnp.int32), jnp.int32(n_classes)), axis=-1)


def greedy_ctc_rows(logits: jax.Array, blank: int) -> jax.Array:
    """Logits `[T, C]` -> one-hot rows `[T, C]`: the class greedy CTC decoding emits at each frame,
    the blank where it emits nothing (the rule of `signpipe.fingerspelling.decode.greedy_keep_mask`)."""
    indices = first_argmax(logits)
    is_first = jnp.arange(indices.shape[0]) == 0
    changed = (indices != jnp.roll(indices, 1)) | is_first
    emitted = jnp.where(changed & (indices != blank), indices, jnp.int32(blank))
    return jax.nn.one_hot(emitted, logits.shape[-1], dtype=jnp.float32)


class _ModelCalls:
    """The model as pure functions of its weight list, the form jax2tf converts with the weights
    as arguments (so TF variables can feed them)."""

    def __init__(self, model: CTCModel):
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        self.graphdef, self.rest = graphdef, rest
        leaves_with_paths, self.treedef = jax.tree_util.tree_flatten_with_path(params)
        self.weights = [np.asarray(leaf) for _, leaf in leaves_with_paths]
        self.weight_names = [_variable_name(path) for path, _ in leaves_with_paths]
        self.config = model.config

    def _model(self, weights: Sequence[jax.Array]) -> CTCModel:
        return nnx.merge(self.graphdef, jax.tree.unflatten(self.treedef, list(weights)), self.rest)

    def logits(self, weights: Sequence[jax.Array], x: jax.Array) -> jax.Array:
        """`[T, 225]` -> `[T, C]`, every frame real."""
        return jnp.squeeze(self._model(weights)(x[None], deterministic=True), axis=0)

    def padded_logits(self, weights: Sequence[jax.Array], x: jax.Array, n_frames: jax.Array) -> jax.Array:
        """`[L, 225]` whose first `n_frames` rows are real -> `[L, C]`; rows past `n_frames` are
        padding the encoder ignores."""
        mask = jnp.arange(x.shape[0]) < n_frames
        return jnp.squeeze(self._model(weights)(x[None], mask[None], deterministic=True), axis=0)


def _variable_name(path: tuple) -> str:
    keys = [str(getattr(entry, "key", getattr(entry, "idx", getattr(entry, "name", entry)))) for entry in path]
    return "/".join(key for key in keys if key != "value")


def jax_outputs_function(model: CTCModel, y_scale: float) -> Callable[[Any], jax.Array]:
    """The graph's computation in JAX, jitted: rows `[T, 288]` -> one-hot outputs `[T, C]`. What
    the TFLite file computes, for latency comparisons and checks on the JAX side."""
    calls = _ModelCalls(model)
    weights = [jnp.asarray(w) for w in calls.weights]
    blank = calls.config.blank_index

    @jax.jit
    def outputs(columns: jax.Array) -> jax.Array:
        return greedy_ctc_rows(calls.logits(weights, input_features(columns, y_scale)), blank)

    return outputs


# --- TF graph and conversion ---------------------------------------------------------------------


def check_export_options(quantize: str, graph: str, buckets: Iterable[int]) -> tuple[int, ...]:
    """Fail on a bad option before minutes of conversion; returns the buckets sorted."""
    if quantize not in QUANTIZATIONS:
        raise ConfigError(f"quantize={quantize!r}: expected one of {', '.join(QUANTIZATIONS)}")
    if graph not in GRAPHS:
        raise ConfigError(f"graph={graph!r}: expected one of {', '.join(GRAPHS)}")
    lengths = tuple(sorted({int(b) for b in buckets}))
    if resolve_graph(graph, quantize) == "fast" and (not lengths or lengths[0] < 1):
        raise ConfigError(f"buckets={list(buckets)!r}: the fast graph needs one or more positive lengths")
    return lengths


def resolve_graph(graph: str, quantize: str) -> str:
    """"auto" -> the faster graph for this quantization (see the module docstring)."""
    if graph != "auto":
        return graph
    return "dynamic" if quantize == "fp16" else "fast"


def _check_y_scale(y_scale: float) -> float:
    is_number = isinstance(y_scale, (int, float, np.floating)) and not isinstance(y_scale, bool)
    if not is_number or not np.isfinite(y_scale) or y_scale <= 0:
        raise ConfigError(f"y_scale={y_scale!r}: expected a positive number (the corpus' height/width ratio)")
    return float(y_scale)


def serving_module(model: CTCModel, y_scale: float, graph: str = "fast", buckets: Iterable[int] = DEFAULT_BUCKETS):
    """A `tf.Module` holding the weights as variables and the `serving_default` function of the
    "fast" or the "dynamic" graph."""
    import tensorflow as tf
    from jax.experimental import jax2tf

    y_scale = _check_y_scale(y_scale)
    if graph not in ("fast", "dynamic"):
        raise ConfigError(f"graph={graph!r}: expected fast or dynamic here (resolve 'auto' with resolve_graph first)")
    lengths = check_export_options("none", graph, buckets)
    calls = _ModelCalls(model)
    blank = calls.config.blank_index
    n_columns = 3 * features.N_INPUT_POINTS

    to_features = jax2tf.convert(lambda c: input_features(c, y_scale), polymorphic_shapes=["(T, _)"], with_gradient=False)
    to_logits = jax2tf.convert(calls.logits, polymorphic_shapes=[None, "(T, _)"], with_gradient=False)
    to_rows = jax2tf.convert(lambda z: greedy_ctc_rows(z, blank), polymorphic_shapes=["(T, _)"], with_gradient=False)
    fixed_logits = jax2tf.convert(calls.padded_logits, with_gradient=False)

    module = tf.Module()
    module.weights = [
        tf.Variable(w, trainable=False, name=name.replace("/", "."))
        for w, name in zip(calls.weights, calls.weight_names, strict=True)
    ]

    def bucketed_logits(x):
        n_frames = tf.shape(x)[0]

        def at_length(length: int):
            def run():
                padded = tf.pad(x, [[0, length - n_frames], [0, 0]])
                padded = tf.reshape(padded, [length, features.N_FEATURES])  # a static shape from here on
                return fixed_logits(module.weights, padded, n_frames)[:n_frames]

            return run

        branches = [(n_frames <= length, at_length(length)) for length in lengths]
        return tf.case(branches, default=lambda: to_logits(module.weights, x), exclusive=False)

    @tf.function(input_signature=[tf.TensorSpec([None, n_columns], tf.float32, name=INPUT_NAME)], autograph=False)
    def serving_default(inputs):
        x = to_features(inputs)
        logits = bucketed_logits(x) if graph == "fast" else to_logits(module.weights, x)
        return {OUTPUT_NAME: to_rows(logits)}

    module.serving_default = serving_default
    return module


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def to_tflite_variants(
    model: CTCModel,
    y_scale: float,
    quantizations: Iterable[str] = ("fp16",),
    graph: str = "fast",
    buckets: Iterable[int] = DEFAULT_BUCKETS,
) -> dict[str, bytes]:
    """TFLite flatbuffers of one graph ("fast" or "dynamic") at several quantizations (traced and
    saved once)."""
    quantizations = list(quantizations)
    for quantize in quantizations:
        check_export_options(quantize, graph, buckets)
    if graph == "auto":
        raise ConfigError("graph='auto' picks per quantization; convert the variants one graph at a time")
    _quiet_tensorflow()
    import tensorflow as tf

    module = serving_module(model, y_scale, graph, buckets)
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="signpipe-export-") as tmp:
        saved_model = str(Path(tmp) / "saved_model")
        tf.saved_model.save(module, saved_model, signatures={SIGNATURE: module.serving_default})
        for quantize in quantizations:
            converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
            if quantize != "none":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantize == "fp16":
                converter.target_spec.supported_types = [tf.float16]
            out[quantize] = converter.convert()
    return out


def to_tflite(
    model: CTCModel, y_scale: float, quantize: str = "fp16", graph: str = "auto", buckets: Iterable[int] = DEFAULT_BUCKETS
) -> bytes:
    """One TFLite flatbuffer (see the module docstring for the graph and quantization options)."""
    check_export_options(quantize, graph, buckets)
    return to_tflite_variants(model, y_scale, [quantize], resolve_graph(graph, quantize), buckets)[quantize]


# --- bundles from models and from training checkpoints --------------------------------------------


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export_model` wrote, for the CLI's JSON and the pipeline's artifact metadata."""

    path: Path
    model_bytes: int
    quantize: str
    graph: str
    y_scale: float
    model: str
    checkpoint: str = ""
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["path"] = str(self.path)
        values["model_mb"] = round(self.model_bytes / 1e6, 3)
        return values


def export_model(
    model: CTCModel,
    y_scale: float,
    out: str | Path,
    quantize: str = "fp16",
    graph: str = "auto",
    buckets: Iterable[int] = DEFAULT_BUCKETS,
) -> ExportResult:
    """Convert `model` (with the corpus' `y_scale` built in) and write the bundle zip `out`."""
    y_scale = _check_y_scale(y_scale)
    check_export_options(quantize, graph, buckets)
    graph = resolve_graph(graph, quantize)
    model_bytes = to_tflite(model, y_scale, quantize, graph, buckets)
    path = write_bundle(out, model_bytes, features.selected_columns())
    return ExportResult(Path(path), len(model_bytes), quantize, graph, y_scale, model.config.name)


@dataclasses.dataclass(frozen=True)
class LoadedCheckpoint:
    model: CTCModel
    config: Any  # signpipe.fingerspelling.config.FinetuneConfig
    step: int
    workdir: Path


def load_checkpoint(checkpoint: str | Path) -> LoadedCheckpoint:
    """The EMA weights of a finetuning run: a workdir gives its best checkpoint (by validation
    score, else its last), a step directory (`WORKDIR/checkpoints/<step>`) that step."""
    from signpipe.train.checkpoint import CHECKPOINT_DIR, storage_path

    path = Path(checkpoint)
    step_dir = path.name.isdigit() and path.parent.name == CHECKPOINT_DIR
    if not (storage_path(path) if step_dir else path).is_dir():  # a step directory is where Orbax keeps it
        raise SignpipeError(f"{path}: checkpoint not found (expected a training workdir or WORKDIR/{CHECKPOINT_DIR}/<step>)")
    from signpipe.fingerspelling.finetune import load_finetuned_model

    workdir = path.parent.parent if step_dir else path
    model, config, step = load_finetuned_model(workdir, which=int(path.name) if step_dir else "best", use_ema=True)
    return LoadedCheckpoint(model, config, step, workdir)


def y_scale_of_run(config: Any, where: str) -> float:
    """The y scale the run trained with: its shard manifest's (the graph must apply the same)."""
    from signpipe.fingerspelling.shards import read_manifest

    data_dir = getattr(config, "data_dir", "")
    if not data_dir or not Path(data_dir).is_dir():
        raise SignpipeError(
            f"{where}: the run's shard directory {data_dir!r} is not reachable here, so its y scale is unknown "
            "(pass it explicitly: --y-scale, the manifest's y_scale)"
        )
    return _check_y_scale(read_manifest(data_dir).get("y_scale"))


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    quantize: str = "fp16",
    graph: str = "auto",
    y_scale: float | None = None,
    buckets: Iterable[int] = DEFAULT_BUCKETS,
) -> ExportResult:
    """`export_model` on a finetuning checkpoint's EMA weights; the y scale defaults to the one in
    the manifest of the shards the run trained on."""
    check_export_options(quantize, graph, buckets)
    check_writable_file(out)  # a read-only destination fails now, not after the conversion
    loaded = load_checkpoint(checkpoint)
    if y_scale is None:
        y_scale = y_scale_of_run(loaded.config, str(checkpoint))
    result = export_model(loaded.model, y_scale, out, quantize, graph, buckets)
    return dataclasses.replace(result, checkpoint=str(checkpoint), step=loaded.step)
