"""TensorFlow's part of an image, checked for real: a tiny CTC model converted to TFLite and scored.

Run inside the cpu image by docker/images-check.sh (`python - < docker/export_check.py`): it
synthesizes a small fingerspelling corpus, converts a freshly initialized tiny model with
`signpipe.fingerspelling.export.export_model` (TensorFlow's converter, what the export step runs), and
scores the bundle with `evaluate_bundle` (ai_edge_litert, what evaluate and gate run). The score
of an untrained model means nothing; what is checked is that conversion and inference work in the
image as built (which leaves libclang and tensorflow/include out of the locked environment).
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from flax import nnx

from signpipe.data.synth import generate_fingerspelling, planted_y_scale
from signpipe.export.evaluate import evaluate_bundle
from signpipe.fingerspelling.export import export_model
from signpipe.fingerspelling.model import build_ctc_model, model_config


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        generate_fingerspelling(corpus, 8, seed=5)
        model = build_ctc_model(model_config("tiny"), rngs=nnx.Rngs(params=3, dropout=1))
        exported = export_model(model, planted_y_scale(corpus), Path(tmp) / "bundle.zip", quantize="fp16")
        result = evaluate_bundle(exported.path, corpus)
    if result.n_sequences != 8 or result.model_bytes != exported.model_bytes:
        raise SystemExit(f"scored {result.n_sequences} sequences of 8, {result.model_bytes} bytes of {exported.model_bytes}")
    print(json.dumps({"tflite_bytes": exported.model_bytes, "graph": exported.graph, "quantize": exported.quantize,
                      "scored_sequences": result.n_sequences, "interpreter": result.interpreter,
                      "seconds": round(time.monotonic() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
