"""Throughput of the finetuning train step on the current backend: steps/s, samples/s and, on a
GPU/TPU, FLOPs utilization from the compiled step's own cost analysis.

    .venv/bin/python benchmarks/train_step.py                      # tiny, small (+ large on accelerators)
    .venv/bin/python benchmarks/train_step.py --sizes large --batch 64 --length 384 --steps 20

The step is the real one (`signpipe.fingerspelling.finetune.make_train_step`: CTC loss, AdamW, clipping,
EMA, dropout on, data-parallel over every device) on a random batch of `--batch` sequences of
`--length` frames with 24-character labels. Utilization compares the achieved FLOP/s with the
device's dense bf16 peak (the step runs in float32, so on GPUs matmuls may use TF32, whose dense
peak is half of that): a ceiling for comparison, not a target. On CPU the peak is a large float32
matmul through jax measured in the same run (`cpu_matmul_tflops`), printed above the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from rich.console import Console
from rich.table import Table

from signpipe.fingerspelling.model import count_params
from signpipe.fingerspelling.config import preset
from signpipe.fingerspelling.finetune import build_model, make_train_step
from signpipe.train.mesh import check_batch_size, make_mesh, replicate, shard_batch
from signpipe.train.optim import build_optimizer

# dense bf16 peak TFLOP/s per chip, by a substring of `device_kind`
PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "H200": 989.0,
    "A100": 312.0,
    "L4": 121.0,
    "A10G": 125.0,
    "TPU v4": 275.0,
    "TPU v5 lite": 197.0,
    "TPU v5e": 197.0,
    "TPU v5p": 459.0,
    "TPU v5": 459.0,
    "TPU v6": 918.0,
}


def peak_tflops(device: jax.Device) -> float | None:
    for name, peak in PEAK_TFLOPS.items():
        if name.lower() in device.device_kind.lower():
            return peak
    if jax.default_backend() == "cpu":
        return cpu_matmul_tflops()
    return None


@functools.lru_cache(maxsize=None)
def cpu_matmul_tflops(n: int = 2048, repeats: int = 5) -> float:
    """What this CPU reaches on a large float32 matmul through jax, measured now (cores and
    neighbours change it from run to run): the practical peak a train step is compared with."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32))
    matmul = jax.jit(lambda x, y: x @ y)
    jax.block_until_ready(matmul(a, a))
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(matmul(a, a))
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e12


def random_batch(batch: int, length: int, label_length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    lengths = rng.integers(length // 2, length + 1, size=batch)
    mask = np.arange(length)[None, :] < lengths[:, None]
    labels = rng.integers(0, 59, size=(batch, 32)).astype(np.int32)
    label_mask = np.arange(32)[None, :] < label_length
    return {
        "inputs": (rng.normal(size=(batch, length, 225)) * mask[..., None]).astype(np.float32),
        "mask": mask,
        "labels": labels * label_mask,
        "label_mask": np.broadcast_to(label_mask, labels.shape).copy(),
        "weights": np.ones(batch, np.float32),
    }


def fits_in_memory(n_params: int, batch: int, length: int, width: int, layers: int) -> bool:
    """Rough check for accelerators: params + Adam moments + EMA + grads (5 x fp32) and activations."""
    stats = jax.devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    if limit is None:
        return True
    activations = batch * length * width * layers * 4 * 30  # ~30 saved tensors of the width per layer
    return 5 * 4 * n_params + activations < 0.8 * limit


def measure(size: str, batch: int, length: int, steps: int, mesh) -> dict:
    config = dataclasses.replace(preset("finetune", "smoke"), model=size, model_overrides={}, batch_size=batch,
                                 total_steps=10_000, warmup_steps=10)  # fmt: skip
    abstract = nnx.eval_shape(lambda: build_model(config))
    model_config = config.model_config()
    n_params = count_params(abstract)
    if jax.default_backend() != "cpu" and not fits_in_memory(n_params, batch, length, model_config.width, model_config.layers):
        return {"size": size, "params": n_params, "skipped": "does not fit in device memory"}
    model = build_model(config)
    graphdef, params, rng_state = nnx.split(model, nnx.Param, ...)
    optimizer = build_optimizer(config, params)
    state = replicate(
        {"step": jnp.int32(0), "params": params, "opt_state": optimizer.init(params), "ema_params": jax.tree.map(jnp.copy, params)},
        mesh,
    )
    train_step = make_train_step(graphdef, rng_state, optimizer, config, mesh)
    batches = [shard_batch(random_batch(batch, length, 24, np.random.default_rng(k)), mesh) for k in range(2)]

    started = time.perf_counter()
    compiled = train_step.lower(state, batches[0]).compile()
    compile_seconds = time.perf_counter() - started
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")

    state, scalars = train_step(state, batches[0])  # warm-up
    jax.block_until_ready(scalars)
    started = time.perf_counter()
    for k in range(steps):
        state, scalars = train_step(state, batches[k % 2])
    jax.block_until_ready((state, scalars))
    seconds = (time.perf_counter() - started) / steps
    result = {
        "size": size,
        "params": n_params,
        "compile_s": compile_seconds,
        "steps_per_s": 1.0 / seconds,
        "samples_per_s": batch / seconds,
        "tflop_per_step": flops / 1e12,
        "tflops": flops / seconds / 1e12,
    }
    peak = peak_tflops(jax.devices()[0])
    if peak is not None and np.isfinite(flops):
        # the compiled program is the per-device (partitioned) one, so this is per-device utilization
        result["utilization"] = flops / seconds / 1e12 / peak
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    accelerator = jax.default_backend() != "cpu"
    parser.add_argument("--sizes", default="tiny,small,large" if accelerator else "tiny,small")
    parser.add_argument("--batch", type=int, default=32, help="global batch (sequences)")
    parser.add_argument("--length", type=int, default=256, help="frames per sequence (padded)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on accelerators, 5 on CPU)")
    args = parser.parse_args()
    steps = args.steps or (20 if accelerator else 5)
    mesh = make_mesh()
    check_batch_size(args.batch, mesh)
    device = jax.devices()[0]
    console = Console()
    if not accelerator:
        console.print(f"CPU peak (2048^3 float32 matmul through jax, best of 5): {cpu_matmul_tflops() * 1e3:.1f} GFLOP/s")
    table = Table(title=f"finetune train step: {jax.device_count()} x {device.device_kind} ({jax.default_backend()}), "
                        f"batch {args.batch} x {args.length} frames")  # fmt: skip
    for column in ("model", "params", "compile s", "steps/s", "samples/s", "TFLOP/step/device", "TFLOP/s/device", "utilization"):
        table.add_column(column, justify="right")
    for size in args.sizes.split(","):
        result = measure(size.strip(), args.batch, args.length, steps, mesh)
        if "skipped" in result:
            table.add_row(result["size"], f"{result['params'] / 1e6:.1f}M", result["skipped"], *[""] * 5)
            continue
        utilization = result.get("utilization")
        table.add_row(
            result["size"],
            f"{result['params'] / 1e6:.2f}M",
            f"{result['compile_s']:.1f}",
            f"{result['steps_per_s']:.2f}",
            f"{result['samples_per_s']:.1f}",
            f"{result['tflop_per_step']:.4f}",
            f"{result['tflops']:.3f}",
            "-" if utilization is None else f"{100 * utilization:.1f}%",
        )
    console.print(table)


if __name__ == "__main__":
    main()
