"""Size and latency of the isolated-signs fold-ensemble bundle at the seed's scale, against the
competition's limits (40 MB for the model, about 100 ms per sequence on average).

    .venv/bin/python benchmarks/isolated_signs.py                          # 5 folds, seed preset, fp16
    .venv/bin/python benchmarks/isolated_signs.py --quantize fp16,none,int8 --frames 18,64,384
    .venv/bin/python benchmarks/isolated_signs.py --folds 1 --override width=192

The fold models are the `seed` preset's (one block of 16 heads at width 384, Sub-center ArcFace
with 3 centres per sign, 250 signs) with random weights: size and latency do not depend on
training. The ensemble is converted exactly as `signpipe signs export` converts it. Each row times
the `serving_default` call with `ai_edge_litert` (the scorer's runtime), one thread, after a
warm-up call:
- at fixed lengths, the length alternating between T and T - 1 from call to call (a graph with a
  symbolic time axis pays for every change of length, as on the scorer's varied sequences);
- over the real asl-signs sample's 84 sequences (5-29 frames; the full corpus' median is 18),
  each once per round: the per-sequence mean the competition's limit is about.
p50/p95/mean of wall time, p50 of process CPU time (steadier on a shared machine), and the load
average while timing, since other jobs on the machine inflate wall times.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "asl-signs-sample"
LIMIT_MB = 40.0
LIMIT_MS = 100.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5, help="fold models in the ensemble")
    parser.add_argument("--preset", default="seed", help="signs preset whose model is measured")
    parser.add_argument("--override", action="append", default=[], help="config override key=value (repeatable)")
    parser.add_argument("--quantize", default="fp16", help="comma-separated: fp16, none, int8")
    parser.add_argument("--frames", default="18,64,128,384", help="comma-separated fixed lengths")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per fixed length")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the real sample's sequences")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="asl-signs corpus whose sequences are timed")
    return parser.parse_args()


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    import numpy as np

    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(ms.mean())


def time_calls(runner, inputs: list, calls: int) -> tuple[float, float, float, float]:
    """(p50, p95, mean wall ms, p50 cpu ms) over `calls` calls cycling through `inputs`."""
    import numpy as np

    runner(inputs=inputs[0])
    wall, cpu = [], []
    for k in range(calls):
        w0, c0 = time.perf_counter(), time.process_time()
        runner(inputs=inputs[k % len(inputs)])
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    p50, p95, mean = percentiles(wall)
    return p50, p95, mean, float(np.median(cpu) * 1e3)


def probe_frames(n_frames: int, seed: int):
    """Landmark-like frames [T, 543, 3]: coordinates near the centre, the left hand missing in some."""
    import numpy as np

    from signpipe.data.schema import PART_OFFSET

    rng = np.random.default_rng(seed)
    frames = rng.normal(0.5, 0.1, size=(n_frames, 543, 3)).astype(np.float32)
    left = PART_OFFSET["left_hand"]
    frames[rng.random(n_frames) < 0.4, left : left + 21] = np.nan
    return frames


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import jax
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from flax import nnx

    from signpipe.data.signs import read_long_frames
    from signpipe.signs.config import resolve_config
    from signpipe.signs.export import to_tflite
    from signpipe.signs.model import build_sign_model
    from signpipe.signs.train import TrainedFold

    # one y scale for every fold (training estimates it on the corpus), so the graph preprocesses once
    config = resolve_config(args.preset, [*args.override, "y_scale=1.2"])
    folds = []
    for i in range(args.folds):
        model = build_sign_model(config.model_config(250), rngs=nnx.Rngs(params=i, dropout=i + 1))
        folds.append(TrainedFold(model, config, step=0, workdir=Path(f"random-{i}")))
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(folds[0].model, nnx.Param)))
    lengths = [int(n) for n in args.frames.split(",") if n.strip()]
    sample_inputs = []
    if (args.sample / "train.csv").is_file():
        import pandas as pd

        paths = pd.read_csv(args.sample / "train.csv")["path"]
        sample_inputs = [read_long_frames(args.sample / p)[0] for p in paths]

    print(f"{args.folds} fold models: preset {args.preset} {' '.join(args.override)} (width {config.width}, "
          f"{config.blocks} block(s), {config.heads} heads, {config.subcenters} centres/sign), "
          f"{n_params / 1e6:.2f}M parameters each")
    header = " ".join(f"{name:>{width}}" for name, width in (("quantize", 8), ("MB", 7), ("frames", 14), ("p50 ms", 8),
                                                                ("p95 ms", 8), ("mean ms", 8), ("cpu ms", 7), ("limits", 14)))
    print(header)
    print("-" * len(header))
    for quantize in [q.strip() for q in args.quantize.split(",") if q.strip()]:
        started = time.perf_counter()
        model = to_tflite(folds, quantize)
        convert_s = time.perf_counter() - started
        megabytes = len(model) / 1e6
        runner = Interpreter(model_content=model, num_threads=1).get_signature_runner("serving_default")
        rows = [(str(n), time_calls(runner, [probe_frames(n, 0), probe_frames(max(n - 1, 1), 1)], args.calls))
                for n in lengths]
        if sample_inputs:
            rows.append((f"sample ({len(sample_inputs)})",
                         time_calls(runner, sample_inputs, args.rounds * len(sample_inputs))))
        for label, (p50, p95, mean, cpu) in rows:
            within = "ok" if megabytes <= LIMIT_MB and mean <= LIMIT_MS else "OVER"
            print(f"{quantize:>8} {megabytes:7.2f} {label:>14} {p50:8.2f} {p95:8.2f} {mean:8.2f} {cpu:7.2f} "
                  f"{within + f' ({LIMIT_MB:.0f}/{LIMIT_MS:.0f})':>14}")
        print(f"{'':>8} converted in {convert_s:.0f} s")
    print(f"load average while timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
