"""Preprocess: corpus -> feature shards, fanned out over shards.

`plan_shards` reads the metadata and decides which sequences go into which shard; the pipeline
runs `write_shard` once per shard in a `dsl.ParallelFor`, and `gather_shards` collects the
shards (`dsl.Collected`) into one shard directory whose manifest, written last, carries the y
scale (`signpipe.fingerspelling.preprocess`).
"""

from typing import List

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def plan_shards(
    corpus: Input[Dataset],
    n_shards: int,
    validation_fraction: float,
    group_by_participant: bool,
    split_seed: int,
    plan: Output[Dataset],
    corpus_fingerprint: str = "",
) -> list:
    """The shard plan (`plan.json`) for `n_shards` parallel workers; returns the shard indices
    the fan-out iterates over. `corpus_fingerprint`: the data's identity, so changed data is
    never a cache hit (the shards read the corpus through the plan, which then is new too)."""
    import json
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.fingerspelling.preprocess import PLAN
    from signpipe.fingerspelling.preprocess import plan_shards as plan_corpus_shards

    shard_plan = plan_corpus_shards(corpus.path, n_shards=n_shards, validation_fraction=validation_fraction,
                                    group_by_participant=group_by_participant, seed=split_seed)
    atomic_write_text(Path(plan.path) / PLAN, json.dumps(shard_plan))
    counts = {split: sum(len(s["sequence_ids"]) for s in shard_plan["shards"] if s["split"] == split)
              for split in ("train", "validation")}
    plan.metadata.update({"shards": len(shard_plan["shards"]), "sequences": counts, "corpus_fingerprint": corpus_fingerprint})
    return list(range(len(shard_plan["shards"])))


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def write_shard(plan: Input[Dataset], index: int, shard: Output[Dataset]):
    """Shard `index` of the plan, with its statistics (`shard_stats.json`) for the gather."""
    import json
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.fingerspelling.preprocess import PLAN, write_planned_shard

    shard_plan = json.loads((Path(plan.path) / PLAN).read_text(encoding="utf-8"))
    stats = write_planned_shard(shard_plan, index, shard.path)
    atomic_write_text(Path(shard.path) / "shard_stats.json", json.dumps(stats))
    shard.metadata.update({"name": stats["name"], "split": stats["split"], "sequences": stats["sequences"],
                           "frames": int(sum(stats["n_frames"]))})


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def gather_shards(plan: Input[Dataset], shards: Input[List[Dataset]], y_scale: float, features: Output[Dataset],
                  metrics: Output[Metrics]):
    """One shard directory from the written shards (each copied in) with its manifest."""
    import json
    import shutil
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.fingerspelling.preprocess import PLAN, gather
    from signpipe.reports import record_metrics

    shard_plan = json.loads((Path(plan.path) / PLAN).read_text(encoding="utf-8"))
    out = Path(features.path)
    out.mkdir(parents=True, exist_ok=True)
    stats = []
    for shard in shards:
        shard_stats = json.loads((Path(shard.path) / "shard_stats.json").read_text(encoding="utf-8"))
        shutil.copyfile(Path(shard.path) / shard_stats["name"], out / shard_stats["name"])
        stats.append(shard_stats)
    atomic_write_text(out / PLAN, json.dumps({k: v for k, v in shard_plan.items() if k != "label_map"}))
    manifest = gather(shard_plan, stats, out, y_scale)
    record_metrics(metrics, manifest["splits"])
    features.metadata.update({"y_scale": manifest["y_scale"], "kind": manifest["kind"],
                              "sequences": {s: v["sequences"] for s, v in manifest["splits"].items()}})
