"""Bundles, the competition's scoring protocol and the gate: what both recipes share after training.

- `bundle`: the Kaggle submission zip (`model.tflite` + `inference_args.json`), read and checked.
- `evaluate`: the competition's scoring protocol with `ai_edge_litert`, plus latency and size.
- `gate`: size / latency / score thresholds (and a champion), pass or fail with a Markdown report.

Turning a trained model into TFLite is the recipe's own: `signpipe.fingerspelling.export` and
`signpipe.signs.export`.

    signpipe export --workdir runs/ft --out bundle.zip --quantize fp16
    signpipe evaluate --model bundle.zip --data corpus/
    signpipe gate --model bundle.zip --data corpus/ --champion current.zip

Submodules are imported explicitly: reading a bundle or gating one does not load jax or TensorFlow.
"""
