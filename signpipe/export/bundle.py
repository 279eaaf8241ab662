"""The submission bundle: a zip holding `model.tflite` and `inference_args.json`, nothing else.

This is the form the asl-fingerspelling competition accepted (REFERENCE.md section 1):
`inference_args.json` is `{"selected_columns": [...]}`, the parquet columns the scorer reads for
each sequence, in the order the model expects them as its input's second axis. Keeping the bundle
byte-for-byte what the competition took means anything that can score a submission can score a
bundle, and the gate judges exactly what would be published.

Reading a bundle checks it the way a failed submission would have told us, but up front and with
what was expected and where: both files present, the column list well formed, the model loadable
with a `serving_default` signature taking float32 `inputs [n_frames, len(selected_columns)]`
and returning `outputs`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signpipe.data.atomic import atomic_path
from signpipe.errors import SignpipeError

MODEL_FILE = "model.tflite"
ARGS_FILE = "inference_args.json"
SIGNATURE = "serving_default"
INPUT_NAME = "inputs"
OUTPUT_NAME = "outputs"


@dataclass(frozen=True)
class Bundle:
    """A bundle read back from its zip: the model's bytes and the columns it reads."""

    path: Path
    model: bytes
    selected_columns: tuple[str, ...]

    @property
    def model_bytes(self) -> int:
        return len(self.model)

    @property
    def model_mb(self) -> float:
        """Size of `model.tflite` in MB (10^6 bytes), the figure the 40 MB limit applies to."""
        return self.model_bytes / 1e6


def check_selected_columns(columns: Any, where: str) -> tuple[str, ...]:
    if not isinstance(columns, (list, tuple)) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise SignpipeError(f"{where}: selected_columns must be a non-empty list of column names, got {columns!r:.120}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise SignpipeError(f"{where}: selected_columns lists {', '.join(duplicated[:5])} more than once")
    return tuple(columns)


def write_bundle(path: str | Path, model: bytes, selected_columns: Sequence[str]) -> Path:
    """Zip `model` and its `selected_columns` into `path` (written whole or not at all)."""
    path = Path(path)
    columns = check_selected_columns(list(selected_columns), str(path))
    if not model:
        raise SignpipeError(f"{path}: refusing to write a bundle with an empty model")
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MODEL_FILE, model)
            archive.writestr(ARGS_FILE, json.dumps({"selected_columns": list(columns)}, indent=1))
    return path


def read_bundle(path: str | Path, check_model: bool = True) -> Bundle:
    """Open a bundle zip and check it; with `check_model`, also load the model and check its
    signature against the columns."""
    path = Path(path)
    if not path.is_file():
        raise SignpipeError(f"{path}: bundle not found (expected a zip with {MODEL_FILE} and {ARGS_FILE})")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [name for name in (MODEL_FILE, ARGS_FILE) if name not in names]
            if missing:
                raise SignpipeError(
                    f"{path}: bundle lacks {' and '.join(missing)} (expected {MODEL_FILE} and {ARGS_FILE} at the "
                    f"top of the zip, found {', '.join(sorted(names)) or 'nothing'})"
                )
            model = archive.read(MODEL_FILE)
            args_text = archive.read(ARGS_FILE)
    except zipfile.BadZipFile as exc:
        raise SignpipeError(f"{path}: not a readable zip ({exc}); expected a bundle written by `signpipe export`") from None
    where = f"{path}:{ARGS_FILE}"
    try:
        args = json.loads(args_text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SignpipeError(f"{where}: not valid JSON ({exc}); expected {{\"selected_columns\": [...]}}") from None
    if not isinstance(args, dict) or "selected_columns" not in args:
        raise SignpipeError(f"{where}: expected a JSON object with a selected_columns list")
    bundle = Bundle(path, model, check_selected_columns(args["selected_columns"], where))
    if check_model:
        check_model_signature(bundle.model, len(bundle.selected_columns), f"{path}:{MODEL_FILE}")
    return bundle


def serving_signature(model: bytes, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input details, output details) of the model's `serving_default`, after checking the model
    loads and the signature is the scorer's call: one input `inputs`, among its outputs `outputs`.
    Every reader of a bundle (export, evaluation of either task, prediction) starts from here."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_content=model)
    except (ValueError, RuntimeError) as exc:
        raise SignpipeError(f"{where}: not a loadable TFLite model ({' '.join(str(exc).split())[:200]})") from None
    signatures = interpreter.get_signature_list()
    if SIGNATURE not in signatures:
        raise SignpipeError(f"{where}: no {SIGNATURE!r} signature (found {sorted(signatures) or 'none'})")
    signature = signatures[SIGNATURE]
    if list(signature.get("inputs", [])) != [INPUT_NAME] or OUTPUT_NAME not in signature.get("outputs", []):
        raise SignpipeError(
            f"{where}: {SIGNATURE} takes {signature.get('inputs')} and returns {signature.get('outputs')}; "
            f"expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}"
        )
    runner = interpreter.get_signature_runner(SIGNATURE)
    return runner.get_input_details()[INPUT_NAME], runner.get_output_details()[OUTPUT_NAME]


def shape_signature(details: Mapping[str, Any]) -> list[int]:
    """A tensor's shape with -1 for each dynamic axis."""
    return [int(n) for n in details.get("shape_signature", details["shape"])]


def check_model_signature(model: bytes, n_columns: int, where: str) -> None:
    """The model loads, and its `serving_default` takes float32 `inputs [n_frames, n_columns]` and
    returns `outputs`: what the scorer calls."""
    import numpy as np

    details, _ = serving_signature(model, where)
    shape = shape_signature(details)
    if details["dtype"] != np.float32 or len(shape) != 2 or shape[1] != n_columns:
        raise SignpipeError(
            f"{where}: input {INPUT_NAME!r} is {np.dtype(details['dtype']).name} {shape}; expected float32 "
            f"[n_frames, {n_columns}] (one column per selected column)"
        )
