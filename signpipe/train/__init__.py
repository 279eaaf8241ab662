"""Training stages (finetune now; pretrain and distill reuse the same pieces).

Each stage has one entry, `train_and_evaluate(config, workdir) -> dict of final metrics`, in its
own module (`signpipe.train.finetune`, `signpipe.train.pretrain`). The shared pieces: `config`
(dataclasses, presets, overrides), `data` (batches from feature shards), `optim` (AdamW,
schedule, EMA), `mesh` (data parallelism, multi-host setup), `checkpoint` (Orbax), `loop` (the
resumable step loop) and `reporting` (TensorBoard, metrics.jsonl, progress bar).

"""

from signpipe.train.config import (
    PRESETS,
    STAGES,
    FinetuneConfig,
    PretrainConfig,
    TrainConfig,
    apply_overrides,
    load_config,
    preset,
    resolve_config,
)

__all__ = [
    "PRESETS",
    "STAGES",
    "FinetuneConfig",
    "PretrainConfig",
    "TrainConfig",
    "apply_overrides",
    "load_config",
    "preset",
    "resolve_config",
]
