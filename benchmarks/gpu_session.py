"""The study's GPU measurements as one prepared script: stage here, run there, read the table.

A lent GPU machine has torch, timm, pandas, scikit-learn and matplotlib but no notebook stack, no
MONAI and no network. So:

1. Here (with network to the package index): ``python benchmarks/gpu_session.py prepare`` copies the
   files the chapters read from ``$MAELIB_DATA`` into ``.device-data/`` and downloads the wheels the
   machine lacks (MONAI, nibabel, pooch, platformdirs, and timm at our pin) into ``.whl/``; both folders
   are git-ignored and together stay under the 64 MiB a device call may carry. It prints the command.
2. There, one call carrying ``.device-data`` and ``.whl``: ``gpu_session.py run`` prints the machine,
   runs the throughput benchmark (``--bench``; two compile modes by default, as each compilation costs
   a minute or so of the call), then the chapters named in ``--chapters`` at the full profile as
   scripts (``python -m maelib run CH --engine script``), each in its own process and ``--jobs`` at a
   time (most of their steps are too small to fill a GPU; masking waits for images, summary for all),
   within ``--budget-s`` seconds in all: a chapter still running at the budget is stopped and records
   nothing.
   Under ``--out`` (``$OUT``) it leaves ``bench.txt``, ``session.log`` (every chapter's output) and
   ``records.tar`` (the new run records, for ``results/runs/``), and prints a table of wall times.
3. Here: ``tar xf records.tar -C results/runs`` and ``make book``: the chapters and the summary show
   the full-profile runs beside the quick ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from maelib.runs import RECORDS, ROOT

STAGE, WHEELS = ROOT / ".device-data", ROOT / ".whl"
# what the chapters read, per dataset folder under MAELIB_DATA (the rest stays behind)
DATA_FILES = {
    "ETT": ["ETTh1.csv"],
    "california_housing": ["housing.csv"],
    "tinyimagenet": ["tin_subset20.tar.gz", "subset20_wnids.txt", "words200.txt"],
    "camvid": ["camvid_half.tar.gz", "classes.txt", "MANIFEST.csv"],
    "hippocampus": ["hippocampus_msd_task04_train260_nii.tar.xz", "manifest.tsv"],
}
WHEEL_PINS = ["monai==1.6.1", "nibabel==5.4.2", "pooch==1.9.0", "platformdirs==4.14.8", "timm==1.0.31"]
CARRY_LIMIT = 64 * 2**20
DEVICE_COMMAND = (
    "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
    ".whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MAELIB_DATA=$PWD/.device-data || exit; "
    "python3 benchmarks/gpu_session.py run --bench --chapters images series tabular segmentation volumes "
    "masking summary --budget-s 540 --out $OUT"
)
CHAPTER_ORDER = ("images", "series", "tabular", "segmentation", "volumes", "masking", "summary")
BENCH_ARGS = "--modes eager cudagraphs --epoch"  # two configurations x two modes: about two compilations


def outcome(code) -> str:
    return {None: "stopped", 0: "ok"}.get(code, f"exit {code}" if isinstance(code, int) else str(code))



def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prepare(data: Path, python_version: str = "3.12") -> None:
    """Copy the chapters' data into ``.device-data`` and the missing packages' wheels into ``.whl``."""
    for folder, names in DATA_FILES.items():
        for name in names:
            src = data / folder / name
            if not src.exists():
                raise FileNotFoundError(f"{src} is missing: set MAELIB_DATA to the staged data folder")
            (STAGE / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, STAGE / folder / name)
    WHEELS.mkdir(exist_ok=True)
    platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux2014_x86_64") for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", python_version, "--implementation", "cp", *platforms, "-d", str(WHEELS),
                    *WHEEL_PINS], check=True)
    total = folder_bytes(STAGE) + folder_bytes(WHEELS)
    print(f"staged {folder_bytes(STAGE) / 2**20:.1f} MiB of data and {folder_bytes(WHEELS) / 2**20:.1f} MiB of "
          f"wheels ({total / 2**20:.1f} MiB of the {CARRY_LIMIT / 2**20:.0f} MiB a call carries, the working "
          f"tree included)")
    if total > CARRY_LIMIT:
        raise SystemExit("too much to carry: leave a dataset out of DATA_FILES")
    print("device call: carry ['.device-data', '.whl'], command:\n" + DEVICE_COMMAND)


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    return f"python {sys.version.split()[0]}, torch {torch.__version__}, {gpu}, {os.cpu_count()} CPUs"


def run_many(commands: dict[str, list[str]], jobs: int, deadline: float, log) -> dict[str, tuple]:
    """Run ``commands`` (name -> argv), ``jobs`` at a time with the CPU's threads shared out among them,
    each one's output appended to ``log`` when it ends; one still running at ``deadline`` (a
    time.time()) is stopped. Returns name -> (exit code, or None if stopped, or "not started"; seconds;
    output)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
    waiting, running, result = list(commands), {}, {}
    while waiting or running:
        while waiting and len(running) < jobs and time.time() < deadline:
            name = waiting.pop(0)
            out = tempfile.TemporaryFile("w+")
            proc = subprocess.Popen(commands[name], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
                                    env=env)
            running[name] = (proc, out, time.time())
        if not running:
            break
        time.sleep(0.2)
        for name, (proc, out, began) in list(running.items()):
            stopped = proc.poll() is None and time.time() >= deadline
            if stopped:
                proc.kill()
            if proc.poll() is None and not stopped:
                continue
            proc.wait()
            out.seek(0)
            text = out.read()
            log.write(f"\n$ {' '.join(commands[name])}\n{text}")
            log.flush()
            result[name] = (None if stopped else proc.returncode, time.time() - began, text)
            del running[name]
    result.update({name: ("not started", 0.0, "") for name in waiting})
    return result


def pack_records(records: Path, since: float, out: Path) -> list[dict]:
    """The run records written after ``since`` into ``out/records.tar`` (replaced whole); their contents."""
    new = sorted(f for f in records.glob("*.json") if f.stat().st_mtime >= since)
    tmp = out / "records.tar.tmp"
    with tarfile.open(tmp, "w") as tar:
        for f in new:
            tar.add(f, arcname=f.name)
    os.replace(tmp, out / "records.tar")
    return [json.loads(f.read_text()) for f in new]


def run(chapters: list[str], bench: list[str] | None, budget: float, out: Path, profile: str, jobs: int) -> None:
    """The benchmark (with the arguments ``bench``, unless None), then the chapters, ``jobs`` at a time
    (masking after images, summary after all), everything within ``budget`` seconds."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    deadline = started + budget
    print(machine(), flush=True)
    rows = []
    with open(out / "session.log", "a") as log:
        log.write(machine() + "\n")
        if bench is not None:
            bench_cmd = [sys.executable, "benchmarks/mae_throughput.py", *bench]
            code, seconds, text = run_many({"benchmark": bench_cmd}, 1, deadline, log)["benchmark"]
            (out / "bench.txt").write_text(text)
            rows.append(("benchmark", code, seconds))
            print(text[text.find("device:"):], flush=True)
        study_began = time.time()
        later = [c for c in ("masking", "summary") if c in chapters]
        for phase in ([c for c in chapters if c not in later], *[[c] for c in later]):
            commands = {c: [sys.executable, "-m", "maelib", "run", c, "--profile", profile, "--engine", "script",
                            "--force", "--no-book"] for c in phase}
            for name, (code, seconds, _) in run_many(commands, jobs, deadline, log).items():
                rows.append((name, code, seconds))
                print(f"{name}: {outcome(code)} after {seconds:.0f} s", flush=True)
            pack_records(RECORDS, started, out)
        study_s = time.time() - study_began
    records = pack_records(RECORDS, started, out)
    print(f"\n{'step':14s} {'outcome':>14s} {'seconds':>8s}")
    for name, code, seconds in rows:
        print(f"{name:14s} {outcome(code):>14} {seconds:8.0f}")
    print(f"the chapters took {study_s:.0f} s of wall time, {jobs} at a time; {len(records)} run records in "
          f"records.tar")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="here: stage data and wheels for a device call")
    p.add_argument("--data", default=os.environ.get("MAELIB_DATA", str(ROOT.parent / "shared" / "data")))
    r = sub.add_parser("run", help="there: benchmark and full-profile chapters, within a time budget")
    r.add_argument("--chapters", nargs="*", default=list(CHAPTER_ORDER), choices=CHAPTER_ORDER)
    r.add_argument("--bench", nargs="?", const=BENCH_ARGS, default=None, metavar="ARGS",
                   help=f"run benchmarks/mae_throughput.py first, with ARGS (default: {BENCH_ARGS!r})")
    r.add_argument("--budget-s", type=float, default=540.0, help="stop starting or running work after this")
    r.add_argument("--profile", default="full", choices=("smoke", "quick", "full"))
    r.add_argument("--jobs", type=int, default=5,
                   help="chapters run at once: most steps are small, so one GPU serves several (default 5)")
    r.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "results" / "device")))
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        prepare(Path(args.data))
    else:
        run(args.chapters, None if args.bench is None else args.bench.split(), args.budget_s, Path(args.out),
            args.profile, args.jobs)


if __name__ == "__main__":
    main()
