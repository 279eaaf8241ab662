"""Training machinery both recipes share: the pieces a training stage is built from.

- `loop`: the resumable step loop (divergence checks, checkpoint cadence, validation);
- `checkpoint`: Orbax checkpoints of a run (save, the one reader `load_checkpoint`, damaged ones
  set aside);
- `mesh`: data parallelism and the multi-host set-up on TPU slices;
- `optim`: AdamW, warmup-cosine schedules, EMA;
- `batching`: restorable iterator state and the length-sorted batching of evaluation sets;
- `prefetch`, `compile_cache`, `reporting` (TensorBoard, `metrics.jsonl`, progress).

The stages themselves live with their recipe: `signpipe.fingerspelling` (pretrain, finetune, noisy
student, distill) and `signpipe.signs` (one fold of the ArcFace classifier). Nothing here imports
either recipe. Submodules are imported explicitly (`from signpipe.train import loop`) so that
importing the package does not pull in jax.
"""
