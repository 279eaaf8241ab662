"""How fast the seed's augmentation pipeline runs on one CPU core, whole and transform by transform.

    .venv/bin/python benchmarks/augment_speed.py [--frames 300] [--max-length 384] [--samples 2000]

The input is shaped like the features module's output: [T, 75, 3], the hand missing (0) in about
40% of frames as in real data, a 20-character phrase. Prints samples/s for the training pipeline
(each transform applied with its own probability, as in training) in wall and CPU time (on a
shared machine the CPU time is the steadier figure), then the cost of each top-level transform
when forced to apply.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from signpipe.landmarks.augment import Sample, default_pipeline


def make_sample(n_frames: int, seed: int = 0) -> Sample:
    rng = np.random.default_rng(seed)
    points = rng.normal(0.0, 0.4, size=(n_frames, 75, 3)).astype(np.float32)
    points[rng.random(n_frames) < 0.4, :21] = 0.0
    return Sample(points, rng.integers(0, 59, size=20))


def best_seconds_per_call(call, n_calls: int, repeats: int = 5, clock=time.perf_counter) -> float:
    """Best of `repeats` timings: the least disturbed by whatever else the machine runs."""
    best = np.inf
    for _ in range(repeats):
        start = clock()
        for _ in range(n_calls):
            call()
        best = min(best, (clock() - start) / n_calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--samples", type=int, default=2000, help="samples per timing of the whole pipeline")
    args = parser.parse_args()

    sample = make_sample(args.frames)
    pipeline = default_pipeline(args.max_length)
    rng = np.random.default_rng(0)
    pipeline(sample, rng)  # warm up

    n_calls = max(args.samples // 5, 1)
    wall = best_seconds_per_call(lambda: pipeline(sample, rng), n_calls)
    cpu = best_seconds_per_call(lambda: pipeline(sample, rng), n_calls, clock=time.process_time)
    print(f"default_pipeline(max_length={args.max_length}), {args.frames}-frame sample, one process")
    print(f"  wall {wall * 1e3:7.3f} ms/sample   {1.0 / wall:8.0f} samples/s")
    print(f"  cpu  {cpu * 1e3:7.3f} ms/sample   {1.0 / cpu:8.0f} samples/s")
    print("each top-level transform, forced to apply (cpu time):")
    for transform in pipeline.transforms:
        seconds = best_seconds_per_call(lambda: transform.apply(sample, rng), 100, clock=time.process_time)
        print(f"  {seconds * 1e6:7.0f} us   {type(transform).__name__}")


if __name__ == "__main__":
    main()
