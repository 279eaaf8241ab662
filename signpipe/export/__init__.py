"""Export, scoring and gating of trained models (fingerspelling now; isolated signs reuse it).

- `tflite`: model (+ the corpus' y scale) -> TFLite graph taking the scorer's raw columns and
  returning greedy-decoded rows; fp32/fp16/int8; a dynamic or a "fast" fixed-length graph;
  `export_model` / `export_checkpoint` write the bundle.
- `bundle`: the Kaggle submission zip (`model.tflite` + `inference_args.json`), read and checked.
- `evaluate`: the competition's scoring protocol with `ai_edge_litert`, plus latency and size.
- `gate`: size / latency / score thresholds (and a champion), pass or fail with a Markdown report.

    signpipe export --workdir runs/ft --out bundle.zip --quantize fp16
    signpipe evaluate --model bundle.zip --data corpus/
    signpipe gate --model bundle.zip --data corpus/ --champion current.zip

Names are imported lazily: reading a bundle or gating one does not load jax or TensorFlow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Bundle": "bundle",
    "read_bundle": "bundle",
    "write_bundle": "bundle",
    "EvaluationResult": "evaluate",
    "evaluate_bundle": "evaluate",
    "GateMeasurements": "gate",
    "GateResult": "gate",
    "GateThresholds": "gate",
    "judge": "gate",
    "run_gate": "gate",
    "DEFAULT_BUCKETS": "tflite",
    "ExportResult": "tflite",
    "export_checkpoint": "tflite",
    "export_model": "tflite",
    "jax_outputs_function": "tflite",
    "load_checkpoint": "tflite",
    "to_tflite": "tflite",
    "to_tflite_variants": "tflite",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"signpipe.export.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
