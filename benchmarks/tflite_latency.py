"""Size and latency of the exported TFLite model per variant and frame count, against JAX.

    .venv/bin/python benchmarks/tflite_latency.py                       # small (24 x 256), all variants
    .venv/bin/python benchmarks/tflite_latency.py --model tiny --frames 32,128
    .venv/bin/python benchmarks/tflite_latency.py --keep /tmp/variants    # keep the .tflite files ...
    .venv/bin/python benchmarks/tflite_latency.py --reuse /tmp/variants   # ... and time them again later

Variants: fp32 / fp16 / int8 (dynamic range) weights x the dynamic graph (symbolic time axis) and
the fast graph (fixed-length buckets, `signpipe.fingerspelling.export`). Each cell times the
`serving_default` signature call with `ai_edge_litert` (the scorer's runtime) as the scorer makes
it, the length changing from call to call (T and T - 1 alternate), after a warm-up call; p50 of
wall time and of process CPU time (on a shared machine CPU time is the steadier figure; with one
thread they should match when the machine is quiet). The JAX row times the same computation
(`jax_outputs_function`: features, encoder, greedy rows) jitted on the CPU, one compiled shape per
length. Weights are random: size and latency do not depend on training. The fast graphs are
checked to give the dynamic graph's outputs (column "= dyn": identical rows at every length).

Prints the load average too: timings taken while other jobs run are inflated, CPU times less so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", help="model size (tiny, small, large or LxD)")
    parser.add_argument("--frames", default="32,128,384", help="comma-separated frame counts")
    parser.add_argument("--quantize", default="none,fp16,int8", help="comma-separated: none, fp16, int8")
    parser.add_argument("--graphs", default="dynamic,fast", help="comma-separated: dynamic, fast")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per cell")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (and XLA's, for the JAX row)")
    parser.add_argument("--y-scale", type=float, default=1.8979)
    parser.add_argument("--keep", type=Path, default=None, help="write the converted .tflite files here")
    parser.add_argument("--reuse", type=Path, default=None, help="time .tflite files written by --keep instead of converting")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX row")
    return parser.parse_args()


def limit_xla_threads(threads: int) -> None:
    """Before jax is imported: one intra-op thread when the interpreters get one, for a fair row."""
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()


def time_calls(call, inputs, calls: int) -> tuple[float, float, float]:
    """(p50 wall ms, p95 wall ms, p50 cpu ms) over `calls` calls cycling through `inputs`."""
    import numpy as np

    call(inputs[0])  # warm-up
    wall, cpu = [], []
    for k in range(calls):
        x = inputs[k % len(inputs)]
        w0, c0 = time.perf_counter(), time.process_time()
        call(x)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    p50, p95 = np.percentile(np.array(wall) * 1e3, [50, 95])
    return float(p50), float(p95), float(np.median(cpu) * 1e3)


def main() -> None:
    args = parse_args()
    limit_xla_threads(args.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    from flax import nnx

    from signpipe.export.evaluate import signature_runner
    from signpipe.export.gate import probe_inputs
    from signpipe.fingerspelling.export import jax_outputs_function, to_tflite_variants
    from signpipe.landmarks import features
    from signpipe.fingerspelling.model import build_ctc_model, count_params, model_config

    frame_counts = [int(t) for t in args.frames.split(",")]
    quantizations = args.quantize.split(",")
    graphs = args.graphs.split(",")
    config = model_config(args.model)
    model = build_ctc_model(config, rngs=nnx.Rngs(params=0, dropout=1))
    n_columns = 3 * features.N_INPUT_POINTS
    inputs = {t: [probe_inputs(n_columns, t, seed=t), probe_inputs(n_columns, t, seed=t)[: max(t - 1, 1)]] for t in frame_counts}

    variants: dict[tuple[str, str], bytes] = {}
    for graph in graphs:
        if args.reuse is not None:
            for q in quantizations:
                variants[(graph, q)] = (args.reuse / f"{args.model}_{graph}_{q}.tflite").read_bytes()
            continue
        started = time.perf_counter()
        converted = to_tflite_variants(model, args.y_scale, quantizations, graph=graph)
        print(f"converted {graph} graph ({', '.join(quantizations)}) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for q, flatbuffer in converted.items():
            variants[(graph, q)] = flatbuffer
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"{args.model}_{graph}_{q}.tflite").write_bytes(flatbuffer)

    header = f"{'variant':<14}{'size MB':>9}" + "".join(f"{f'T={t} p50/p95 (cpu)':>26}" for t in frame_counts) + f"{'= dyn':>7}"
    print(f"model {args.model} ({config.layers} x {config.width}, {count_params(model) / 1e6:.2f}M parameters), "
          f"{args.threads} thread(s), ai_edge_litert, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for (graph, q), flatbuffer in variants.items():
        runner = signature_runner(flatbuffer, args.threads)
        cells, same = [], True
        for t in frame_counts:
            p50, p95, cpu = time_calls(lambda x: runner(inputs=x), inputs[t], args.calls)
            cells.append(f"{p50:9.1f} /{p95:7.1f} ({cpu:6.1f})")
            if graph == "fast" and ("dynamic", q) in variants:
                reference = signature_runner(variants[("dynamic", q)], args.threads)
                same &= all(np.array_equal(runner(inputs=x)["outputs"], reference(inputs=x)["outputs"]) for x in inputs[t])
        check = ("yes" if same else "NO") if graph == "fast" and ("dynamic", q) in variants else ""
        name = {"none": "fp32"}.get(q, q) + f" {graph[:4]}"
        print(f"{name:<14}{len(flatbuffer) / 1e6:9.2f}" + "".join(f"{c:>26}" for c in cells) + f"{check:>7}")

    if not args.no_jax:
        import jax.numpy as jnp

        outputs = jax_outputs_function(model, args.y_scale)
        cells = []
        for t in frame_counts:
            jax_inputs = [jnp.asarray(x) for x in inputs[t]]
            for x in jax_inputs:  # compile both lengths before timing
                outputs(x).block_until_ready()
            p50, p95, cpu = time_calls(lambda x: outputs(x).block_until_ready(), jax_inputs, args.calls)
            cells.append(f"{p50:9.1f} /{p95:7.1f} ({cpu:6.1f})")
        print(f"{'jax (jit)':<14}{'':>9}" + "".join(f"{c:>26}" for c in cells))
    print("ms per sequence: wall p50 / wall p95 (cpu p50)")


if __name__ == "__main__":
    main()
