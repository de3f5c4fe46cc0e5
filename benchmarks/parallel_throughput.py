"""Runs side by side on this machine's cores: one process with every thread, against one process per core.

Three measurements, each printed as a table:

- ``steps``: the image MAE's pretraining step (:func:`maelib.train.fit` over synthetic 64-px images, batch
  128, fp32, mask 0.75) for three model sizes, as one process with all the cores' threads and as one
  one-thread process per core started together; images/s summed over the processes.
- ``sweep``: a real quick sweep of the images chapter (``python -m maelib sweep images --seeds 0 1``)
  with ``--jobs 1`` against ``--jobs 2``; seeds per hour.
- ``book``: the quick book from an empty cache (``python -m maelib book``), with ``--jobs 1`` against
  ``--jobs 2``, one after the other at the same code.

Every timed run has a fresh cache (no checkpoint to resume, data decoded anew) and a copy of the run
registry (learning-rate choices of the committed seed-0 runs are reused as in a real rerun, and nothing
the benchmark runs is recorded in the local registry, ``results/local``).

    python benchmarks/parallel_throughput.py steps
    python benchmarks/parallel_throughput.py sweep --seeds 0 1
    python benchmarks/parallel_throughput.py book
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from maelib import provenance

ROOT = Path(__file__).resolve().parent.parent
SIZES = {  # name -> (patch, dim, depth, heads, decoder dim, decoder depth, decoder heads)
    "quick profile (64 px, patch 16, 128 x 6)": (16, 128, 6, 4, 64, 1, 4),
    "64 px, patch 8, 128 x 6": (8, 128, 6, 4, 64, 1, 4),
    "ViT-T/8 (192 x 12, decoder 128 x 4)": (8, 192, 12, 3, 128, 4, 4),
}


def step_rate(size: str, threads: int, steps: int, batch: int = 128) -> float:
    """images/s of the pretraining step in this process with ``threads`` threads (median epoch after one)."""
    import torch

    torch.set_num_threads(threads)
    from maelib.data import TensorLoader
    from maelib.mae import MaskedAutoencoder
    from maelib.tokens import Patches2d
    from maelib.train import TrainConfig, fit

    patch, dim, depth, heads, ddim, ddepth, dheads = SIZES[size]
    torch.manual_seed(0)
    model = MaskedAutoencoder(Patches2d(64, patch), dim, depth, heads, decoder_dim=ddim, decoder_depth=ddepth,
                              decoder_heads=dheads, norm_target=True)
    loader = TensorLoader((torch.randn(batch * steps, 3, 64, 64),), batch, shuffle=True, drop_last=True)
    history = fit(model, lambda m, b: m(b[0], 0.75)[0], loader, TrainConfig(epochs=3, lr=1.5e-4),
                  torch.device("cpu"), progress=False)
    return batch * steps / statistics.median(history["epoch_s"].iloc[1:])


def _rate_child(size: str, threads: int, steps: int) -> subprocess.Popen:
    env = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import parallel_throughput as b; " \
           f"print(b.step_rate({size!r}, {threads}, {steps}))"
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def side_by_side(size: str, processes: int, threads: int, steps: int) -> float:
    """Summed images/s of ``processes`` processes with ``threads`` threads each, started together."""
    children = [_rate_child(size, threads, steps) for _ in range(processes)]
    rates = [float(c.communicate()[0].strip().splitlines()[-1]) for c in children]
    return sum(rates)


def steps_table(steps: int) -> None:
    n = len(os.sched_getaffinity(0))
    print(f"MAE pretraining step, batch 128, fp32, {n} cores: images/s summed over the processes")
    print(f"| model | 1 process x {n} threads | {n} processes x 1 thread | ratio |")
    print("|---|---|---|---|")
    for size in SIZES:
        one = side_by_side(size, 1, n, steps)
        many = side_by_side(size, n, 1, steps)
        print(f"| {size} | {one:.0f} | {many:.0f} | {many / one:.2f} |", flush=True)


def timed(cmd: list[str], records: Path) -> float:
    """Seconds ``cmd`` took with a fresh cache and a copy of the run registry."""
    with tempfile.TemporaryDirectory(prefix="maelib-bench-") as tmp:
        shutil.copytree(records, Path(tmp) / "runs")
        env = {**os.environ, "MAELIB_CACHE": str(Path(tmp) / "cache"), "MAELIB_RECORDS": str(Path(tmp) / "runs")}
        started = time.time()
        subprocess.run(cmd, env=env, check=True, cwd=ROOT)
        return time.time() - started


def sweep_table(chapter: str, seeds: list[int], jobs: list[int]) -> None:
    rows = []
    for j in jobs:
        with tempfile.TemporaryDirectory(prefix="maelib-sweep-") as out:
            cmd = [sys.executable, "-m", "maelib", "sweep", chapter, "--profile", "quick", "--jobs", str(j),
                   "--out-dir", out, "--seeds", *map(str, seeds)]
            rows.append((j, timed(cmd, provenance.RECORDS)))
    print(f"quick sweep of {chapter}, seeds {' '.join(map(str, seeds))}, fresh cache each")
    print("| jobs | wall min | seeds per hour | vs --jobs 1 |")
    print("|---|---|---|---|")
    for j, s in rows:
        print(f"| {j} | {s / 60:.1f} | {len(seeds) * 3600 / s:.1f} | {s / rows[0][1]:.2f}x |")


def book_table(jobs: list[int]) -> None:
    rows = []
    for j in jobs:
        for folder in ("_build", "book/executed", "book/chapters"):
            shutil.rmtree(ROOT / folder, ignore_errors=True)
        rows.append((j, timed([sys.executable, "-m", "maelib", "book", "--profile", "quick", "--jobs", str(j)],
                              provenance.RECORDS)))
    print("quick book from an empty cache (chapters, then jupyter-book)")
    print("| jobs | wall min | vs --jobs 1 |")
    print("|---|---|---|")
    for j, s in rows:
        print(f"| {j} | {s / 60:.1f} | {s / rows[0][1]:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("steps")
    s.add_argument("--steps", type=int, default=8, help="steps per timed epoch")
    w = sub.add_parser("sweep")
    w.add_argument("--chapter", default="images")
    w.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    w.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    b = sub.add_parser("book")
    b.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    if args.what == "steps":
        steps_table(args.steps)
    elif args.what == "sweep":
        sweep_table(args.chapter, args.seeds, args.jobs)
    else:
        book_table(args.jobs)


if __name__ == "__main__":
    main()
