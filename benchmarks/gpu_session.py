"""The study's GPU work as prepared calls: stage here, run there, import here.

A lent GPU machine has torch, timm, pandas, scikit-learn and matplotlib but no notebook stack, no MONAI
and no network, and a call carries at most 64 MiB of files and runs at most 600 s. So:

1. Here (with the package index): ``python benchmarks/gpu_session.py prepare --call a`` copies the files
   the call's chapters read from ``$MAELIB_DATA`` into ``.device-data/`` and downloads the wheels the
   machine lacks (MONAI and nibabel, timm at our pin, and the notebook stack: papermill, ipykernel,
   IPython, nbformat, jupytext, myst-nb...) into ``.whl/``; both folders are git-ignored and stay under
   what a call may carry. The study is split in two calls (``a``: images, segmentation; ``b``:
   series, tabular, volumes) because the data and the wheels of all chapters do not fit in one (the
   masking, summary and reproduce chapters run here, for every build: they read the others). It
   prints the command for the call.
2. There, one call carrying ``.device-data`` and ``.whl``: ``gpu_session.py run`` prints the machine,
   runs the throughput benchmark (``--bench``), then the call's chapters at the full profile, executed
   as notebooks by papermill (``python -m maelib run CH``), each in its own process and ``--jobs`` at a
   time, within ``--budget-s`` seconds in all: a chapter still running at the budget is stopped and
   records nothing. Under ``--out`` (``$OUT``) it leaves ``executed/`` (the executed notebooks and
   their run records), ``records.tar`` (the records for ``results/runs/``), ``models/image_mae_full.pt``
   (the image MAE in fp16, a few MB, for the masking chapter and the browser), ``bench.txt`` and
   ``session.log``.
3. Here: ``python -m maelib device import <the fetched folder>`` puts them where the book finds them
   (``results/executed/full/``, ``results/runs/``, ``results/models/``), then ``make book``. Outputs of a
   session made elsewhere, under ``../shared/device-runs/<date>/``, import the same way
   (``python -m maelib device pending`` lists those not imported yet).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from maelib import catalog
from maelib.profiles import SPECS
from maelib.provenance import RECORDS, ROOT

STAGE, WHEELS = ROOT / ".device-data", ROOT / ".whl"
# what the chapters read, per dataset folder under MAELIB_DATA (the rest stays behind)
DATA_FILES = {
    "ETT": ["ETTh1.csv", "ETTh2.csv"],
    "california_housing": ["housing.csv"],
    "tinyimagenet": ["tin_subset20.tar.gz", "subset20_wnids.txt", "words200.txt"],
    "camvid": ["camvid_half.tar.gz", "classes.txt", "MANIFEST.csv"],
    "hippocampus": ["hippocampus_msd_task04_train260_nii.tar.xz", "manifest.tsv"],
}
CHAPTER_DATA = {name: list(c.data) for name, c in catalog.CHAPTERS.items()}  # declared in maelib.catalog
CALLS = {call: tuple(n for n, c in catalog.CHAPTERS.items() if c.device_call == call)
         for call in sorted({c.device_call for c in catalog.CHAPTERS.values() if c.device_call})}
# what the device lacks (the pins of requirements.txt): the notebook stack with its dependencies, and
# packages whose dependencies the device has (torch, numpy...) or does not need at run time (myst-nb's sphinx;
# its glue needs docutils, which the device lacks)
NOTEBOOK_STACK = ["papermill==2.7.0", "ipykernel==7.4.0", "jupytext==1.19.6", "nbclient==0.11.0", "nbformat"]
NO_DEPS = ["docutils==0.21.2", "monai==1.6.1", "nibabel==5.4.2", "pooch==1.9.0", "platformdirs==4.14.8",
           "timm==1.0.31", "myst-nb==1.4.0"]
# projects the device image already holds (the device tool's KINDS.md): their wheels are not carried
# (platformdirs is not among them: pooch needs it, and the session of 2026-12-04 failed on its absence)
DEVICE_HAS = {
    "attrs", "certifi", "charset-normalizer", "click", "filelock", "fsspec", "idna", "jinja2", "markdown-it-py",
    "markupsafe", "mdurl", "numpy", "packaging", "pandas", "pillow", "psutil", "pygments",
    "python-dateutil", "pyyaml", "requests", "six", "torch", "tqdm", "typing-extensions", "urllib3", "tzdata",
    "huggingface-hub", "safetensors", "torchvision", "setuptools", "wheel", "pip", "matplotlib", "scipy",
}
CARRY_LIMIT = 64 * 2**20


def device_command(call: str) -> str:
    chapters = " ".join(CALLS[call])
    bench = "--bench " if call == "a" else ""
    return ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
            ".whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MAELIB_DATA=$PWD/.device-data "
            "MAELIB_COMMIT=$(cat .device-data/COMMIT) || exit; "
            f"python3 benchmarks/gpu_session.py run {bench}--chapters {chapters} --budget-s 540 --out $OUT")


CHAPTER_ORDER = ("images", "series", "tabular", "segmentation", "volumes", "masking")
BENCH_ARGS = "--modes eager cudagraphs --epoch"  # two configurations x two modes: about two compilations


def outcome(code) -> str:
    return {None: "stopped", 0: "ok"}.get(code, f"exit {code}" if isinstance(code, int) else str(code))



def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _project(wheel: Path) -> str:
    return wheel.name.split("-")[0].lower().replace("_", "-")


def prepare(data: Path, call: str, python_version: str = "3.12", stage: Path = STAGE, wheels: bool = True) -> None:
    """Copy the data of ``call``'s chapters into ``stage`` (``.device-data``) and the wheels the device
    lacks into ``.whl`` (unless ``wheels`` is false: a rehearsal here, where everything is installed)."""
    shutil.rmtree(stage, ignore_errors=True)
    for folder in sorted({f for ch in CALLS[call] for f in CHAPTER_DATA[ch]}):
        for name in DATA_FILES[folder]:
            src = data / folder / name
            if not src.exists():
                raise FileNotFoundError(f"{src} is missing: set MAELIB_DATA to the staged data folder")
            (stage / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, stage / folder / name)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    (stage / "COMMIT").write_text(commit + "\n")  # the device's copy has no git: its records name this one
    if not wheels:
        print(f"call {call}: staged {folder_bytes(stage) / 2**20:.1f} MiB of data in {stage} (no wheels)")
        return
    WHEELS.mkdir(exist_ok=True)
    platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux2014_x86_64", "manylinux_2_17_x86_64")
                 for a in ("--platform", p)]
    base = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", python_version,
            "--implementation", "cp", *platforms, "-d", str(WHEELS)]
    subprocess.run(base + NOTEBOOK_STACK, check=True)
    subprocess.run(base + ["--no-deps"] + NO_DEPS, check=True)
    for wheel in WHEELS.glob("*.whl"):
        if _project(wheel) in DEVICE_HAS:
            wheel.unlink()
    total = folder_bytes(stage) + folder_bytes(WHEELS)
    print(f"call {call} ({', '.join(CALLS[call])}): staged {folder_bytes(stage) / 2**20:.1f} MiB of data and "
          f"{folder_bytes(WHEELS) / 2**20:.1f} MiB of wheels ({total / 2**20:.1f} MiB of the "
          f"{CARRY_LIMIT / 2**20:.0f} MiB a call carries, the working tree included)")
    if total > CARRY_LIMIT:
        raise SystemExit("too much to carry: split the call's chapters")
    print("device call: carry ['.device-data', '.whl'], command:\n" + device_command(call))


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
                                    env=env, start_new_session=True)  # its own group: the kernel goes with it
            running[name] = (proc, out, time.time())
        if not running:
            break
        time.sleep(0.2)
        for name, (proc, out, began) in list(running.items()):
            stopped = proc.poll() is None and time.time() >= deadline
            if stopped:
                os.killpg(proc.pid, signal.SIGKILL)  # the chapter and its notebook kernel
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


def collect(chapter: str, out: Path, profile: str) -> None:
    """After the image chapter, its MAE in fp16 into ``out/models/image_mae_<profile>.pt``."""
    from maelib import images
    from maelib.provenance import image_mae_checkpoint

    if chapter == "images":
        import torch

        mae, saved = images.load_mae(image_mae_checkpoint(profile)[0])
        (out / "models").mkdir(exist_ok=True)
        images.save_mae(mae, argparse.Namespace(mask_ratio=saved["mask_ratio"], profile=profile),
                        out / "models" / f"image_mae_{profile}.pt", dtype=torch.float16)


def chapter_commands(chapter: str, seeds: list[int], profile: str, out: Path) -> dict[str, list[str]]:
    """The runs of ``chapter`` for ``seeds``: one run training them all where the chapter has a ``seeds``
    parameter (series, tabular: consecutive seeds), else one run per seed. The first seed's executed
    notebook goes to ``out/executed`` (what the book shows); the others' to ``out/seeds`` (their records
    travel in records.tar)."""
    base = [sys.executable, "-m", "maelib", "run", chapter, "--profile", profile, "--force", "--no-book"]
    if "seeds" in SPECS[chapter]:
        return {chapter: base + ["--out-dir", str(out / "executed"), "-p", "seed", str(seeds[0]),
                                 "-p", "seeds", str(len(seeds))]}
    return {(chapter if i == 0 else f"{chapter}-seed{s}"):
            base + ["--out-dir", str(out / ("executed" if i == 0 else f"seeds/{chapter}-{s}")), "-p", "seed", str(s)]
            for i, s in enumerate(seeds)}


def run(chapters: list[str], bench: list[str] | None, budget: float, out: Path, profile: str, jobs: int,
        seeds: list[int] = (0,)) -> None:
    """The benchmark (with the arguments ``bench``, unless None), then the chapters executed as notebooks
    for ``seeds``, ``jobs`` at a time (masking after images), everything within ``budget`` seconds."""
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
        later = [c for c in ("masking",) if c in chapters]
        for phase in ([c for c in chapters if c not in later], *[[c] for c in later]):
            commands = {k: v for c in phase for k, v in chapter_commands(c, list(seeds), profile, out).items()}
            for name, (code, seconds, _) in run_many(commands, jobs, deadline, log).items():
                rows.append((name, code, seconds))
                if code == 0 and name == "images" and seeds[0] == 0:  # the seed-0 model is the book's
                    collect(name, out, profile)
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
    p.add_argument("--call", choices=sorted(CALLS), required=True, help="which chapters' call to prepare")
    p.add_argument("--stage", default=str(STAGE), help="where the data goes (default .device-data)")
    p.add_argument("--no-wheels", action="store_true", help="stage the data only (a rehearsal here)")
    r = sub.add_parser("run", help="there: benchmark and full-profile chapters, within a time budget")
    r.add_argument("--chapters", nargs="*", default=list(CHAPTER_ORDER), choices=CHAPTER_ORDER)
    r.add_argument("--bench", nargs="?", const=BENCH_ARGS, default=None, metavar="ARGS",
                   help=f"run benchmarks/mae_throughput.py first, with ARGS (default: {BENCH_ARGS!r})")
    r.add_argument("--budget-s", type=float, default=540.0, help="stop starting or running work after this")
    r.add_argument("--profile", default="full", choices=("smoke", "quick", "full"))
    r.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="seeds to run (default 0; a later call adds others, e.g. --seeds 1 2 3 4)")
    r.add_argument("--jobs", type=int, default=5,
                   help="chapters run at once: most steps are small, so one GPU serves several (default 5)")
    r.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "results" / "device")))
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        prepare(Path(args.data), args.call, stage=Path(args.stage), wheels=not args.no_wheels)
    else:
        run(args.chapters, None if args.bench is None else args.bench.split(), args.budget_s, Path(args.out),
            args.profile, args.jobs, args.seeds)


if __name__ == "__main__":
    main()
