"""Isolated signs (asl-signs): the top-50 recipe, from corpus to one ensembled TFLite model.

- `features`: the seed's preprocessing in jax.numpy, shared by training and the exported graph;
- `augment`: scale, shift, rotate, horizontal flip of normalized key points (jnp, per sample);
- `model`: MLP embedding + transformer block(s) + Sub-center ArcFace head, the ArcFace loss;
- `optim`: Ranger (RAdam + Lookahead) and the 1e-6 -> 1e-4 -> 1e-7 schedule;
- `config`: the run config, presets `smoke` and `seed`, `key=value` overrides;
- `data`: key points of a corpus' sequences in memory, restorable batches;
- `folds`: StratifiedGroupKFold by participant, fold runs, out-of-fold accuracy;
- `fold_plan`: the pipeline's fold plan (participants per fold, one y scale for all folds);
- `train`: `train_and_evaluate(config, workdir)` for one fold;
- `export`: the fold models averaged into one TFLite model with the competition's interface;
- `report`: the evaluation page (accuracy, confusion matrix, confused pairs, latency);
- `gate`: the signs gate (size, mean latency, accuracy against the majority-class baseline and
  the champion), on `signpipe.export.gate`'s thresholds and verdict.

    signpipe signs train --data corpus/ --workdir runs/signs --preset smoke --folds all
    signpipe signs export --workdir runs/signs --out bundle.zip
    signpipe evaluate --model bundle.zip --data eval_corpus/

Submodules are imported explicitly (`from signpipe.signs import train`) so importing the package
does not pull in jax.
"""
