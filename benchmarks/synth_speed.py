"""How fast `signpipe.data.synth` writes a fingerspelling corpus (target: 1,000 sequences < 60 s).

    .venv/bin/python benchmarks/synth_speed.py                  # 1,000 sequences, written to a temp dir
    .venv/bin/python benchmarks/synth_speed.py -n 200 --split   # also time rendering alone (no parquet)

Prints sequences/s over wall-clock and CPU time, and the load average, since the project machine's
two cores are shared and wall-clock time there depends on the neighbours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--n-sequences", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the corpus here and keep it")
    parser.add_argument("--split", action="store_true", help="also time rendering without writing")
    args = parser.parse_args()

    from signpipe.data.synth import generate_fingerspelling
    from signpipe.data.synth.sign_templates import sign_templates

    sign_templates()  # built once per process; the alphabet too, on first use below
    work = Path(tempfile.mkdtemp(prefix="synth_speed_"))
    out = args.keep or work / "corpus"
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        corpus = generate_fingerspelling(out, args.n_sequences, args.seed, overwrite=args.keep is not None)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        print(f"fingerspelling: {corpus.n_sequences} sequences, {corpus.n_frames} frames, "
              f"{corpus.n_participants} participants, {size / 1e6:.0f} MB")  # fmt: skip
        print(f"  wall {wall:.1f} s = {corpus.n_sequences / wall:.1f} sequences/s; "
              f"cpu {cpu:.1f} s = {corpus.n_sequences / cpu:.1f} sequences/s per core")  # fmt: skip
        if args.split:
            _time_rendering(args.seed, args.n_sequences)
        print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _time_rendering(seed: int, n: int) -> None:
    """Render the same kind of sequences in memory only: the generator's share of the total."""
    import numpy as np

    from signpipe.data.synth.phrases import random_phrase
    from signpipe.data.synth.scene import render_fingerspelling
    from signpipe.data.synth.signers import make_signers

    signers = make_signers(seed, "fingerspelling", max(2, min(n // 50, 100)), 1.8979)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        render_fingerspelling(random_phrase(rng), signers[i % len(signers)], rng)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  rendering only: wall {wall:.1f} s = {n / wall:.1f} sequences/s; cpu {cpu:.1f} s")


if __name__ == "__main__":
    main()
