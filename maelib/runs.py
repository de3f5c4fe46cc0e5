"""Execute chapters with papermill and record finished runs.

``run_chapter("images", {"mask_ratio": 0.5})`` validates the parameters (before any compute), turns
``notebooks/01_images.py`` into a notebook with jupytext, executes it with papermill into a temporary
file, and only when it finished moves it to ``book/executed/01_images.ipynb`` and writes the run record
``book/executed/01_images.run.json`` (chapter, parameters, profile, device, seed, metrics, wall time,
git commit, and a stamp of the inputs). A chapter whose notebook, parameters and library are unchanged
since its last finished run is skipped.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import profiles
from .data.registry import cache_dir
from .files import claim_folder, clean_stale, create_exclusive, writable_folder, write_text_atomic

COMPUTES = False  # runs, records, shows or checks chapters: not part of the code version (runs.code_hash)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "book" / "executed"  # local executions (papermill), one per chapter
COMMITTED = ROOT / "results" / "executed"  # <profile>/<stem>.ipynb and .run.json imported from a GPU run
RECORDS = Path(os.environ.get("MAELIB_RECORDS") or ROOT / "results" / "runs")  # the run registry
# chapters whose output depends on recorded runs, and the chapters whose records they read (None: all others)
READS_REGISTRY = {"masking": {"images"}, "summary": None}
READS_EXECUTED = {"reproduce"}  # chapters that read the other chapters' run records beside them
# the run record's schema: each key a record must hold, and the types its value may have (None: null)
RECORD_SCHEMA = {"chapter": (str,), "notebook": (str,), "parameters": (dict,), "resolved": (dict,), "profile": (str,),
                 "seed": (int, None), "device": (str, None), "metrics": (dict,), "wall_s": (int, float),
                 "finished": (str,), "git_commit": (str, None), "stamp": (str,)}
RECORD_KEYS = tuple(RECORD_SCHEMA)
PACKAGES = ("torch", "torchvision", "timm", "monai", "numpy", "pandas", "scikit-learn", "scipy", "matplotlib",
            "seaborn", "papermill", "jupyter-book")


class ChapterFailed(RuntimeError):
    """A chapter stopped before it finished (nothing was recorded); the message names the error and the
    parameters it ran with."""

    def __init__(self, chapter: str, ename: str, evalue: str, params: dict):
        self.chapter, self.ename, self.evalue, self.params = chapter, ename, evalue, params
        given = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "defaults"
        super().__init__(f"chapter {chapter!r} stopped with {ename}: {evalue.strip()} [parameters: {given}]; "
                         "nothing was recorded")

    def __reduce__(self):  # rebuilt from its parts when a sweep's job process hands it back
        return type(self), (self.chapter, self.ename, self.evalue, self.params)


# Which runs are the same? Three questions, three functions, all here:
# - skip this chapter? ``stamp`` (its notebook, parameters, all of maelib and the records it reads): a local
#   execution with the same stamp is not run again (``run_chapter``).
# - resume this checkpoint? ``run_dir`` (the resolved parameters and ``code_hash``, the computing code): a run
#   resumes only checkpoints made by the same parameters and code; inside the folder, ``train.fit`` checks its
#   training configuration too before it resumes.
# - pool these seeds? ``pool_version`` (a record's ``version``: ``code_hash`` and the chapter's notebook) beside
#   ``tuning.setting`` (its resolved parameters and the data it read): the summary pools only seeds of one
#   version and setting.
# A maelib module is part of the code version unless it says ``COMPUTES = False`` itself.
NOT_COMPUTING_MARK = re.compile(rb"^COMPUTES = False\b", re.M)


def code_hash(computing_only: bool = True) -> str:
    """A hash of maelib's source files: by default only those that compute (models, training, data,
    metrics, learning-rate reuse: every module without its own ``COMPUTES = False`` line), which is the code
    version checkpoint folders are keyed by, so that a change to how results are shown does not split
    seeds into versions; all of them with ``computing_only=False`` (what decides whether an executed
    chapter is stale)."""
    h = hashlib.sha256()
    root = ROOT / "maelib"
    for f in sorted(root.rglob("*.py")):
        text = f.read_bytes()
        if computing_only and NOT_COMPUTING_MARK.search(text):
            continue
        h.update(str(f.relative_to(root)).encode() + text)
    return h.hexdigest()


def version(chapter: str) -> str:
    """The version a chapter's seeds are pooled by: the computing code (:func:`code_hash`) and the code
    cells of the chapter's notebook, which decide how the arms are trained and scored (its prose does not,
    so mending a sentence does not split the seeds)."""
    return hashlib.sha256((code_hash() + notebook_code_hash(chapter)).encode()).hexdigest()


def pool_version(record: dict) -> str | None:
    """A record's :func:`version`; records made before it existed carry only ``code``, which no newer
    version equals, so they stay apart."""
    return record.get("version") or record.get("code")


def environment() -> dict:
    """The Python and package versions a run used (for the record and the book's reproduce page)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def threads() -> int:
    """The intra-op thread count a chapter's kernel starts with: ``OMP_NUM_THREADS`` where a sweep's job
    pinned it (:mod:`maelib.jobs`), else torch's default, one per core."""
    pinned = os.environ.get("OMP_NUM_THREADS", "")
    return int(pinned) if pinned.isdigit() else len(os.sched_getaffinity(0))


def run_dir(chapter: str, p) -> Path:
    """Checkpoint folder for a chapter run with the resolved parameters ``p`` under ``p.checkpoint_dir``,
    else the maelib cache, named by a hash of the parameters and of maelib's code: the same parameters
    and code find the same checkpoints, and a changed library never resumes an older run's."""
    params = {k: v for k, v in sorted(vars(p).items()) if k not in ("device", "checkpoint_dir")}
    text = json.dumps(params, sort_keys=True, default=str) + code_hash()
    tag = hashlib.sha1(text.encode()).hexdigest()[:10]
    root = Path(p.checkpoint_dir) if getattr(p, "checkpoint_dir", None) else cache_dir() / "runs"
    return root / f"{chapter}-{p.profile}-{tag}"


def checkpoint_dir(chapter: str, p) -> Path:
    """:func:`run_dir`, created and locked for this process: a second run with the same parameters and
    code waits for this one, then resumes from its checkpoints, instead of training in the same files."""
    return claim_folder(run_dir(chapter, p))


class NoCheckpointError(FileNotFoundError):
    """No trained image MAE was found; the message says how to make one."""


MODELS = ROOT / "results" / "models"  # committed weights from GPU runs (image_mae_full.pt, fp16)


def image_mae_checkpoint(profile: str, path: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The image MAE the masking chapter shows, chosen deliberately, and how it was chosen:

    1. ``path`` when given;
    2. the image chapter's run at ``profile`` with its default parameters and this code;
    3. at the full profile, the committed full-profile model made on a GPU (``results/models``);
    4. else the newest image-chapter run at ``profile`` (other parameters or an earlier code version).
    """
    if path:
        if not Path(path).is_file():
            raise NoCheckpointError(f"mae_checkpoint {path} does not exist")
        return Path(path), "the checkpoint given as mae_checkpoint"
    exact = run_dir("images", profiles.resolve("images", profile)) / "mae_final.pt"
    committed = MODELS / "image_mae_full.pt"
    if exact.is_file():
        return exact, f"the image chapter's run at the {profile} profile's default parameters"
    if profile == "full" and committed.is_file():
        return committed, "the full-profile image MAE made on a GPU and committed (results/models)"
    root = cache_dir() / "runs"
    found = sorted(root.glob(f"images-{profile}-*/mae_final.pt"), key=lambda f: f.stat().st_mtime)
    if found:
        return found[-1], (f"the newest image-chapter run at the {profile} profile (other parameters or an earlier "
                           "version of the code than this book's)")
    raise NoCheckpointError(
        f"no image MAE trained at the {profile} profile under {root}. Make one with `python -m maelib run images "
        f"--profile {profile}`, or pass the path of an mae_final.pt as mae_checkpoint.")


def chapters() -> dict[str, Path]:
    """Chapter name -> notebook source: ``notebooks/01_images.py`` is chapter ``images``."""
    return {f.stem.split("_", 1)[1]: f for f in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))}


def notebook_of(chapter: str) -> Path:
    known = chapters()
    if chapter not in known:
        raise KeyError(f"unknown chapter {chapter!r}; known: {', '.join(known)}")
    return known[chapter]


def stamp(chapter: str, params: dict) -> str:
    """A hash of what determines a chapter's output: its notebook, its parameters and maelib's code (and
    for chapters that read other runs' records, which records there are)."""
    h = hashlib.sha256(notebook_of(chapter).read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(code_hash(computing_only=False).encode())
    if chapter in READS_EXECUTED:  # every record it may show, local and committed
        committed = Path(params.get("committed_dir") or COMMITTED) / "full"
        for folder in (Path(params.get("executed_dir") or EXECUTED), committed):
            for f in sorted(folder.glob("*.run.json")):
                if not f.name.startswith(notebook_of(chapter).stem):
                    h.update(str(f).encode() + (read_record(f) or {}).get("stamp", "").encode())
    for model in ("image_mae_full.pt", "image_mae_reference.pt"):  # the committed models masking may show
        if chapter == "masking" and (MODELS / model).exists():
            h.update(str((MODELS / model).stat().st_mtime_ns).encode())
    if chapter in READS_REGISTRY:
        reads = READS_REGISTRY[chapter]
        names = [f.name for f in RECORDS.glob("*.json") if f.name.split("-")[0] != chapter
                 and (reads is None or f.name.split("-")[0] in reads)]
        h.update(" ".join(sorted(names)).encode())
    return h.hexdigest()


def glued(nb) -> dict:
    """Values glued with ``myst_nb.glue`` in an executed notebook: name -> Python value (or text)."""
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            key = f"{meta.get('mime_prefix', '')}text/plain" if meta else None
            if key and key in o.get("data", {}):
                out[meta["name"]] = _parse(o["data"][key])
    return out


def _parse(text: str):
    """A glued value's text back into a Python value where it is a literal (a ``nan`` inside becomes
    None, ``inf`` stays infinite), else the text."""
    for candidate in (text, re.sub(r"\bnan\b", "None", re.sub(r"\binf\b", "1e999", text))):
        try:
            return ast.literal_eval(candidate)
        except (ValueError, SyntaxError):
            continue
    return text


def _git_commit() -> str | None:
    """The checked-out commit, or ``$MAELIB_COMMIT`` where the working tree is a copy without git (a
    lent GPU machine: benchmarks/gpu_session.py sets it)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("MAELIB_COMMIT") or None


def notebook_hash(chapter: str) -> str:
    """The whole notebook, prose included (what the book's "changed since" box compares)."""
    return hashlib.sha256(notebook_of(chapter).read_bytes()).hexdigest()


MARKDOWN_CELL = re.compile(r"^# %% \[(markdown|md)\]")


def notebook_code_hash(chapter: str) -> str:
    """The notebook's code cells only, blank lines left out (jupytext percent format: a markdown cell runs
    from its ``# %% [markdown]`` line to the next ``# %%`` line)."""
    code, prose = [], False
    for line in notebook_of(chapter).read_text().splitlines():
        if line.startswith("# %%"):
            prose = bool(MARKDOWN_CELL.match(line))
        if not prose and line.strip():
            code.append(line.rstrip())
    return hashlib.sha256("\n".join(code).encode()).hexdigest()


class RecordSetAside(UserWarning):
    """A run record that is not read: damaged, or not of the schema (the summary page lists them)."""


def read_record(path: Path) -> dict | None:
    """A run record, or None (with a warning naming the file) when it is not readable JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        warnings.warn(f"run record {path} is damaged ({type(e).__name__}: {e}); it is ignored", RecordSetAside,
                      stacklevel=2)
        return None


def _execute_notebook(src: Path, params: dict, done_nb: Path, progress: bool, chapter: str = "",
                      expected: float | None = None) -> dict:
    """papermill into ``done_nb`` (a temporary file); the glued values. A
    :class:`maelib.progress.Watcher` shows in the terminal how the kernel's trainings go (a live line
    where ``progress`` and on a terminal) and, where ``expected`` (seconds) is known, the time left in
    the chapter. The kernel talks to papermill over local sockets (IPC), not TCP: a TCP kernel warns
    that its traffic is unencrypted."""
    import jupytext
    import nbformat
    import papermill as pm

    from . import progress as shown

    src_nb = done_nb.with_name(f"{src.stem}.source.ipynb")
    nbformat.write(jupytext.read(src), src_nb)
    report = done_nb.with_name("progress.jsonl")
    with tempfile.TemporaryDirectory(prefix="maelib-kernel-") as sockets, _environ(shown.ENV, str(report)), \
            shown.Watcher(report, chapter or src.stem, live=None if progress else False, expected=expected):
        pm.execute_notebook(str(src_nb), str(done_nb), parameters=params, cwd=str(ROOT), kernel_name="python3",
                            progress_bar=False, log_output=False, config=_kernel_config(sockets))
    return glued(nbformat.read(done_nb, as_version=4))


def _kernel_config(folder: str):
    """The kernel manager's configuration: IPC sockets in ``folder`` (a short path of this run's own)
    where the system has them, so that runs side by side never share a socket."""
    from traitlets.config import Config

    if os.name != "posix":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")}})


@contextlib.contextmanager
def _environ(name: str, value: str):
    """``os.environ[name] = value`` for the block (a kernel started inside it inherits it)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def run_chapter(chapter: str, params: dict | None = None, force: bool = False, out_dir: Path = EXECUTED,
                progress: bool = True, records_dir: Path | None = RECORDS, note: str | None = None) -> Path:
    """Execute one chapter with ``params`` (papermill parameters); return the executed notebook's path.
    ``note`` is said on stderr once every check has passed, just before the chapter starts.

    Only a notebook that finished is moved into ``out_dir`` (``<stem>.ipynb``), its run record beside it
    (``<stem>.run.json``); a chapter whose inputs are unchanged since then is skipped. When
    ``records_dir`` is set, a finished run also goes into the run registry there (one JSON file per run).
    """
    params = dict(params or {})
    params.setdefault("profile", "auto")
    if "live" in profiles.SPECS.get(chapter, {}):
        params.setdefault("live", False)  # no live widgets in executed notebooks: the book has no kernel
    if chapter in READS_EXECUTED and Path(out_dir).resolve() != EXECUTED.resolve():
        params.setdefault("executed_dir", str(out_dir))  # the chapters executed beside it
    if params["profile"] == "auto":
        params["profile"] = profiles.default_profile()
    check_destinations(params, out_dir, records_dir)
    resolved = profiles.resolve(chapter, **params)  # refuses bad input before any compute
    src = notebook_of(chapter)
    check_syntax(src)
    preflight(chapter, resolved)
    out_nb = out_dir / f"{src.stem}.ipynb"
    record = out_dir / f"{src.stem}.run.json"
    key = stamp(chapter, params)
    for folder in (out_dir, records_dir):
        if folder is not None:
            clean_stale(folder)
    last = (read_record(record) or {}) if record.exists() else {}
    if not force and out_nb.exists() and last.get("stamp") == key:
        print(f"{chapter}: unchanged since its last run, skipped ({out_nb})")
        return out_nb
    if note:  # only for a run that will start: a refused one announces nothing
        print(note, file=sys.stderr)
    started, code, pooled = time.time(), code_hash(), version(chapter)  # the code as it was when the run began
    from .progress import expected_s

    expected = expected_s(chapter, vars(resolved))  # by the recorded runs, for the time left it shows
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".running-{os.getpid()}-") as tmp:  # beside the result
        done_nb = Path(tmp) / out_nb.name
        values = _execute(chapter, src, params, done_nb, progress, expected)
        if not isinstance(values.get("params"), dict):
            raise ChapterFailed(chapter, "RuntimeError", "the chapter did not glue 'params' (its resolved "
                                "parameters)", params)
        ran = values["params"]  # what the notebook itself resolved
        entry = {
            "chapter": chapter, "notebook": src.name, "parameters": params, "resolved": ran,
            "profile": ran.get("profile", resolved.profile), "seed": ran.get("seed"), "device": values.get("device"),
            "metrics": values.get("results", {}), "wall_s": round(time.time() - started, 1),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(), "git_commit": _git_commit(), "stamp": key,
            "engine": "papermill", "code": code, "version": pooled, "notebook_sha": notebook_hash(chapter),
            "data": values.get("data_source"), "environment": environment(), "threads": threads(),
        }
        text = json.dumps(entry, indent=2, default=str)
        if records_dir is not None:
            stamp_time = entry["finished"][:19].replace(":", "").replace("-", "")
            create_exclusive(Path(records_dir) / f"{chapter}-{stamp_time}-{key[:8]}.json", text)
        os.replace(done_nb, out_nb)
        write_text_atomic(record, text)
    return out_nb


def preflight(chapter: str, p) -> None:
    """Ask the computation itself, once and on tiny inputs, whether a setting can work, before the chapter
    runs: the device and the seeds, a given image-MAE checkpoint, and the chapter's own check (its model
    built and run on a blank input; see e.g. :func:`maelib.images.preflight`)."""
    from . import train

    specs = profiles.SPECS[chapter]
    device = check_device(p.device) if "device" in specs else None
    if "seed" in specs:
        last = p.seed + (getattr(p, "seeds", None) or 1) - 1
        try:
            train.seed_everything(last)
        except (RuntimeError, OverflowError, ValueError) as e:
            raise ValueError(f"seed: {last} cannot seed torch, which takes seeds in [0, 2**64 - 1] ({e})") from None
    if getattr(p, "mae_checkpoint", None):
        from .images import load_mae

        load_mae(image_mae_checkpoint(p.profile, p.mae_checkpoint)[0])
    if chapter in PREFLIGHTS:
        import importlib

        module, name = PREFLIGHTS[chapter].split(":")
        getattr(importlib.import_module(f"maelib.{module}"), name)(p, device)


# each chapter's own check of a setting, ``module:function(p, device)``, run before the chapter
PREFLIGHTS = {"images": "images:preflight", "segmentation": "images:check_model", "series": "series:preflight",
              "tabular": "tabular:preflight", "volumes": "volumes:preflight"}


def check_device(name: str):
    """The torch device ``name`` stands for, once a tensor was made on it; else a ValueError naming it."""
    import torch

    from .train import pick_device

    try:
        device = pick_device(name)
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError, ValueError) as e:
        raise ValueError(f"device must be auto, cpu or a device this machine has (cuda needs a GPU), got {name!r} "
                         f"({str(e).splitlines()[0]})") from None
    return device


def check_syntax(src: Path) -> None:
    """Parse every code cell of a chapter's source before any runs (in the percent format the markdown
    cells are comments, so the file parses as one); a syntax error names its line and cell."""
    text = src.read_text()
    try:
        ast.parse(text, filename=str(src))
    except SyntaxError as e:
        cell = sum(line.startswith("# %%") for line in text.splitlines()[: e.lineno])
        raise ValueError(f"{src.relative_to(ROOT) if src.is_relative_to(ROOT) else src}, line {e.lineno} (cell "
                         f"{cell}): {e.msg}: {(e.text or '').strip()!r}; no cell was run") from None


def check_destinations(params: dict, out_dir: Path, records_dir: Path | None) -> None:
    """Every folder a run will write in, created and written in once before it computes: the executed
    notebook's, the run registry's and the checkpoints' (``checkpoint_dir``, else the maelib cache)."""
    writable_folder(out_dir, "the output folder (--out-dir)")
    if records_dir is not None:
        writable_folder(records_dir, "the run registry (MAELIB_RECORDS)")
    if params.get("checkpoint_dir"):
        writable_folder(params["checkpoint_dir"], "checkpoint_dir")
    writable_folder(cache_dir(), "the maelib cache (MAELIB_CACHE)")


def _execute(chapter: str, src: Path, params: dict, done_nb: Path, progress: bool,
             expected: float | None = None) -> dict:
    """The chapter's glued values after papermill ran it; a run that stops raises :class:`ChapterFailed`
    (or KeyboardInterrupt, when it was interrupted)."""
    try:
        return _execute_notebook(src, params, done_nb, progress, chapter, expected)
    except KeyboardInterrupt:
        raise
    except Exception as e:
        ename, evalue = getattr(e, "ename", None), getattr(e, "evalue", None)
        if ename is None:
            ename, evalue = type(e).__name__, str(e)
        if ename == "KeyboardInterrupt":
            raise KeyboardInterrupt from None
        raise ChapterFailed(chapter, ename, evalue, params) from e


def record_problem(entry) -> str | None:
    """What makes ``entry`` (a parsed JSON file) not a run record of :data:`RECORD_SCHEMA`, or None."""
    if not isinstance(entry, dict):
        return f"it holds a {type(entry).__name__}, not an object"
    missing = [k for k in RECORD_SCHEMA if k not in entry]
    if missing:
        return f"it lacks {', '.join(missing)}"
    for key, kinds in RECORD_SCHEMA.items():
        value = entry[key]
        if not (value is None and None in kinds or isinstance(value, tuple(k for k in kinds if k)) and
                not isinstance(value, bool)):
            return f"its {key} is {value!r}, not {' or '.join('null' if k is None else k.__name__ for k in kinds)}"
    if entry["profile"] not in profiles.PROFILE_NAMES:
        return f"its profile is {entry['profile']!r}, not one of {', '.join(profiles.PROFILE_NAMES)}"
    claims = {k: v for k, v in entry["metrics"].items() if k == "claim" or k.startswith("claim_")}
    return next(filter(None, (claim_problem(k, v) for k, v in claims.items())), None)


def claim_problem(key: str, claim) -> str | None:
    """What makes a record's per-seed values (``metrics[key]``, ``key`` one of claim, claim_long...: name ->
    one value per seed) unfit to pool, or None: lists of different lengths, or a number that is not finite."""
    if not isinstance(claim, dict) or not all(isinstance(v, list) for v in claim.values()):
        return f"its {key} is not a set of per-seed lists"
    lengths = {k: len(v) for k, v in claim.items()}
    if len(set(lengths.values())) > 1:
        return f"its {key}'s per-seed lists differ in length ({', '.join(f'{k} {n}' for k, n in lengths.items())})"
    for name, values in claim.items():
        for i, v in enumerate(values):
            numbers = v if isinstance(v, list) else [v]  # a curve per seed
            if any(isinstance(x, float) and not math.isfinite(x) for x in numbers):
                return f"its {key}'s {name}[{i}] holds a value that is not finite"
    return None


def load_records(chapter: str | None = None, root: Path = RECORDS) -> list[dict]:
    """Finished runs from the registry, oldest first; a file that is not a record of the schema is set
    aside with a warning naming it."""
    out = []
    for f in sorted(Path(root).glob("*.json")):
        entry = read_record(f)
        problem = None if entry is None else record_problem(entry)
        if problem:
            warnings.warn(f"run record {f} does not follow the schema ({problem}); it is ignored", RecordSetAside,
                          stacklevel=2)
        elif entry is not None and (chapter is None or entry["chapter"] == chapter):
            out.append(entry)
    return sorted(out, key=lambda e: e["finished"])


def last_wall_s(chapter: str, profile: str = "auto", root: Path = RECORDS) -> float:
    """The wall time of the newest recorded run of ``chapter`` at ``profile`` with the default parameters
    (infinite when none is recorded: an unknown chapter is taken to be long)."""
    profile = profiles.default_profile() if profile == "auto" else profile
    times = [r["wall_s"] for r in load_records(chapter, root) if r["profile"] == profile and not r["parameters"].keys()
             - {"profile", "seed", "live", "executed_dir"}]
    return float(times[-1]) if times else float("inf")


def independent(chapter: str) -> bool:
    """Whether a chapter reads no other chapter's results (so it may run beside the others)."""
    return chapter not in READS_REGISTRY and chapter not in READS_EXECUTED


def toc_chapters(root: Path = ROOT) -> list[str]:
    """Chapter names in the order ``_toc.yml`` lists them (by their notebooks' names)."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    names = {v.stem: k for k, v in chapters().items()}
    return [names[Path(f).stem] for f in files if Path(f).stem in names]
