"""Fingerspelling (asl-fingerspelling): the 5th place recipe, from feature shards to one TFLite model.

Every stage of the recipe is a module here, in the order a run meets them:

- `preprocess`, `shards`: a corpus -> feature shards (the model's raw input points per sequence,
  a train/validation split) and their manifest, read and checked by `shards.read_checked_manifest`;
- `model/`: the seed's conv-stem + RoPE transformer encoder, its CTC and KD heads, named sizes;
- `config`: the stages' config dataclasses, their presets and the stage table `STAGES`;
- `data`: CTC batches from shards (featurized, augmented, restorable);
- `pretrain` (+ `data2vec`): Data2vec 2.0 pretraining of the encoder;
- `finetune`: CTC finetuning, and `load_finetuned_model`, the one reader of a CTC run's checkpoints;
- `align/`: CTC pseudo-alignment (`viterbi`, the `artifact`, `run`) and temporal CutMix (`cutmix`);
- `noisy_student`: CTC finetuning on CutMix batches of pseudo-aligned sequences;
- `distill`: knowledge distillation from a frozen teacher into a smaller student;
- `decode`: greedy and beam-search CTC decoding;
- `export`: the model (+ the corpus' y scale) -> a TFLite graph taking the scorer's raw columns,
  and the Kaggle bundle;
- `report`: the evaluation page (score by phrase kind and length, confusions, latency).

What both recipes share lives in the layers: `signpipe.data` (corpora), `signpipe.landmarks` (y
scale, the point layout, augmentations), `signpipe.train` (loop, checkpoints, mesh, optimizer,
batching), `signpipe.export` (bundle, scoring protocol, gate). Submodules are imported explicitly
(`from signpipe.fingerspelling import finetune`) so that importing the package does not pull in jax.
"""
