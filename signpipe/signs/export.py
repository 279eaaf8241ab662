"""The fold models of an isolated-signs run -> ONE TFLite model with the competition's interface.

The graph takes what the asl-signs scorer passes (REFERENCE.md section 3): `inputs` float32
`[n_frames, 543, 3]`, the raw x, y, z of every landmark, NaN where MediaPipe found nothing; and
returns `outputs` float32 `[250]`: the mean over the fold models of each one's class
probabilities (softmax of its scaled cosines). The scorer's `argmax(outputs)` is then the
ensemble's answer. Averaging probabilities, not votes or the most confident model, is what the
seed kept (voting and max-prob ensembles did worse).

Inside, per fold model: `features.graph_inputs` (key points, centre-crop mask, y scale of that
fold, normalization, features: the very functions training ran) and the classifier in float32.
Folds sharing a y scale and crop share one preprocessing. Conversion: jax2tf with a symbolic time
axis inside a `tf.function` named `serving_default`, saved as a SavedModel, then
`TFLiteConverter` (REFERENCE.md section 4); the weights are `tf.Variable`s fed to the converted
function. Quantization: "fp16" (default: half the size, about 1e-3 relative error), "none"
(fp32) or "int8" (dynamic range: int8 weights, about 0.3x the size).

The bundle is the zip `signpipe evaluate` and the gate read: `model.tflite` plus
`inference_args.json` naming the columns the scorer reads from a long file (`x`, `y`, `z`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from signpipe.data.atomic import check_writable_file
from signpipe.data.schema import N_POINTS
from signpipe.errors import ConfigError, SignpipeError
from signpipe.export.bundle import INPUT_NAME, OUTPUT_NAME, SIGNATURE, write_bundle
from signpipe.signs import features
from signpipe.signs.folds import fold_workdirs
from signpipe.signs.model import class_probabilities
from signpipe.signs.train import TrainedFold, load_trained_fold
from signpipe.train.checkpoint import has_checkpoints

QUANTIZATIONS = ("fp16", "none", "int8")


class EnsembleCalls:
    """The fold models as one pure function of a flat weight list and the raw frames: the form
    jax2tf converts with the weights as arguments."""

    def __init__(self, folds: Sequence[TrainedFold]):
        if not folds:
            raise SignpipeError("no fold models to export (expected at least one trained fold)")
        classes = {fold.model.config.n_classes for fold in folds}
        if len(classes) != 1:
            raise SignpipeError(f"fold models disagree on the number of classes ({sorted(classes)}); "
                                "were they trained on different corpora?")
        self.n_classes = classes.pop()
        self.members = []
        self.weights: list[np.ndarray] = []
        self.weight_names: list[str] = []
        for i, fold in enumerate(folds):
            graphdef, params, rest = nnx.split(fold.model, nnx.Param, ...)
            leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
            start = len(self.weights)
            self.weights += [np.asarray(leaf, np.float32) for _, leaf in leaves]
            self.weight_names += [f"fold{i}." + ".".join(_key(entry) for entry in path if _key(entry) != "value")
                                  for path, _ in leaves]
            self.members.append((graphdef, rest, treedef, slice(start, len(self.weights)), fold.config))

    def probabilities(self, weights: Sequence[jax.Array], frames: jax.Array) -> jax.Array:
        """Raw frames `[T, 543, 3]` -> mean class probabilities `[C]`."""
        inputs: dict[tuple[float, int], tuple[jax.Array, jax.Array]] = {}
        total = None
        for graphdef, rest, treedef, rows, config in self.members:
            key = (config.y_scale, config.max_frames)
            if key not in inputs:
                inputs[key] = features.graph_inputs(frames, config.y_scale, config.max_frames)
            x, mask = inputs[key]
            model = nnx.merge(graphdef, jax.tree.unflatten(treedef, list(weights[rows])), rest)
            member = class_probabilities(model(x, mask, deterministic=True), config.arcface_scale)
            total = member if total is None else total + member
        return jnp.squeeze(total, axis=0) / len(self.members)


def _key(entry: Any) -> str:
    return str(getattr(entry, "key", getattr(entry, "idx", getattr(entry, "name", entry))))


def jax_ensemble_function(folds: Sequence[TrainedFold]) -> Callable[[Any], jax.Array]:
    """Jitted raw frames `[T, 543, 3]` -> `[C]`: what the TFLite graph computes, on the JAX side."""
    calls = EnsembleCalls(folds)
    weights = [jnp.asarray(w) for w in calls.weights]
    return jax.jit(lambda frames: calls.probabilities(weights, frames))


def serving_module(folds: Sequence[TrainedFold]):
    """A `tf.Module` with the weights as variables and the `serving_default` function."""
    import tensorflow as tf
    from jax.experimental import jax2tf

    calls = EnsembleCalls(folds)
    converted = jax2tf.convert(calls.probabilities, polymorphic_shapes=[None, f"(T, {N_POINTS}, 3)"], with_gradient=False)
    module = tf.Module()
    module.weights = [tf.Variable(w, trainable=False, name=name) for w, name in zip(calls.weights, calls.weight_names,
                                                                                   strict=True)]

    @tf.function(input_signature=[tf.TensorSpec([None, N_POINTS, 3], tf.float32, name=INPUT_NAME)], autograph=False)
    def serving_default(inputs):
        return {OUTPUT_NAME: converted(module.weights, inputs)}

    module.serving_default = serving_default
    return module


def check_quantize(quantize: str) -> str:
    if quantize not in QUANTIZATIONS:
        raise ConfigError(f"quantize={quantize!r}: expected one of {', '.join(QUANTIZATIONS)}")
    return quantize


def to_tflite(folds: Sequence[TrainedFold], quantize: str = "fp16") -> bytes:
    """One TFLite flatbuffer averaging `folds` (see the module docstring)."""
    check_quantize(quantize)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    module = serving_module(folds)
    with tempfile.TemporaryDirectory(prefix="signpipe-signs-export-") as tmp:
        saved_model = str(Path(tmp) / "saved_model")
        tf.saved_model.save(module, saved_model, signatures={SIGNATURE: module.serving_default})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


@dataclasses.dataclass(frozen=True)
class SignsExportResult:
    """What `export_ensemble` wrote, for the CLI's JSON and a pipeline's artifact metadata."""

    path: Path
    model_bytes: int
    quantize: str
    members: tuple[str, ...]
    steps: tuple[int, ...]
    y_scales: tuple[float, ...]
    n_classes: int

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values.update(path=str(self.path), members=list(self.members), steps=list(self.steps),
                      y_scales=list(self.y_scales), model_mb=round(self.model_bytes / 1e6, 3))
        return values


def member_workdirs(workdirs: Sequence[str | Path]) -> list[Path]:
    """Fold workdirs from what a user names: fold workdirs themselves, or run roots holding
    `fold_<i>/` directories (expanded in fold order)."""
    found: list[Path] = []
    for workdir in workdirs:
        workdir = Path(workdir)
        if has_checkpoints(workdir):
            found.append(workdir)
        elif fold_workdirs(workdir):
            found += fold_workdirs(workdir)
        else:
            raise SignpipeError(f"{workdir}: neither a fold run (no checkpoints/) nor a run root with fold_<i>/ runs")
    return found


def export_ensemble(
    workdirs: Sequence[str | Path], out: str | Path, quantize: str = "fp16", which: str = "last"
) -> SignsExportResult:
    """Average the fold models of `workdirs` (see `member_workdirs`) into one bundle at `out`."""
    from signpipe.export.evaluate import SIGNS_COLUMNS

    check_quantize(quantize)
    check_writable_file(out)  # a read-only destination fails now, not after the conversion
    folds = [load_trained_fold(w, which) for w in member_workdirs(workdirs)]
    model = to_tflite(folds, quantize)
    path = write_bundle(out, model, SIGNS_COLUMNS)
    return SignsExportResult(
        Path(path), len(model), quantize, tuple(str(f.workdir) for f in folds), tuple(f.step for f in folds),
        tuple(f.config.y_scale for f in folds), folds[0].model.config.n_classes,
    )
