"""The run records: where they live, what a record holds, which code version made it, and which
checkpoints and image MAE a run finds.

A registry holds one JSON record per finished run (:data:`RECORD_SCHEMA`). A run writes to the local
one (``results/local``, ignored by git, or ``$MAELIB_RECORDS``); publishing moves a record into the
committed one (``results/runs``), and readers pool both (:func:`registries`). A record names the code version it was made with (:func:`version`): the code its
chapter's notebook reaches. This module sits below the runner (:mod:`maelib.runs`), which writes records,
and below the study (:mod:`maelib.summary`), which pools them; it imports nothing above the recipes' core.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
import subprocess
import time
import warnings
from pathlib import Path

from . import profiles
from .data.registry import cache_dir
from .files import claim_folder, write_text_atomic
from .report import Results


ROOT = Path(__file__).resolve().parent.parent


NOTEBOOKS = ROOT / "notebooks"


EXECUTED = ROOT / "book" / "executed"  # local executions (papermill), one per chapter


COMMITTED = ROOT / "results" / "executed"  # <profile>/<stem>.ipynb and .run.json imported from a GPU run


PUBLISHED = ROOT / "results" / "runs"  # the committed registry: the runs the book's verdicts rest on
LOCAL = ROOT / "results" / "local"  # ignored by git: the runs made here and not published (python -m maelib publish)
RECORDS = Path(os.environ.get("MAELIB_RECORDS") or LOCAL)  # where a run writes its record


def registries() -> tuple[Path, ...]:
    """The registries a reader pools: ``$MAELIB_RECORDS`` alone where it is set, else the published one and
    the local one beside it."""
    return (RECORDS,) if os.environ.get("MAELIB_RECORDS") else (PUBLISHED, LOCAL)


# the run record's schema: each key a record must hold, and the types its value may have (None: null)
RECORD_SCHEMA = {"chapter": (str,), "notebook": (str,), "parameters": (dict,), "resolved": (dict,), "profile": (str,),
                 "seed": (int, None), "device": (str, None), "metrics": (dict,), "wall_s": (int, float),
                 "finished": (str,), "git_commit": (str, None), "stamp": (str,)}


RECORD_KEYS = tuple(RECORD_SCHEMA)


PACKAGES = ("torch", "torchvision", "timm", "monai", "numpy", "pandas", "scikit-learn", "scipy", "matplotlib",
            "seaborn", "papermill", "jupyter-book")


# Which runs are the same? Three questions, three functions:
# - skip this chapter? ``runs.stamp`` (its notebook, parameters, the code it reaches and the records it reads).
# - resume this checkpoint? :func:`run_dir` (the resolved parameters and the chapter's :func:`code_hash`): a
#   run resumes only checkpoints made by the same parameters and code; inside the folder, ``train.fit``
#   checks its training configuration too before it resumes.
# - pool these seeds? :func:`pool_version` (a record's ``version``: :func:`version`) beside
#   ``tuning.setting`` (its resolved parameters and the data it read).
# A chapter's code is what its notebook reaches: the maelib modules its code cells import, followed through
# every module's imports (those inside functions too). A change to a module it does not reach leaves its
# version, its checkpoints and its seeds as they were.


def module_files() -> dict[str, Path]:
    """maelib's modules: dotted name (``maelib.data.ett``; a package by its own name) -> source file."""
    out = {}
    for f in sorted((ROOT / "maelib").rglob("*.py")):
        parts = f.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def imported_modules(tree: ast.AST, module: str, is_package: bool = False, known=None) -> set[str]:
    """The maelib modules that the code ``tree`` of ``module`` imports anywhere (in functions too), relative
    imports resolved; ``from package import name`` counts the submodule ``name`` where it is one."""
    known, found = known or module_files(), set()
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bases = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            pkg = here[:len(here) - node.level + 1] if node.level else []
            base = ".".join(pkg + (node.module.split(".") if node.module else []))
            bases = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in bases:
            while name and name not in known and "." in name:  # maelib.data.ett.ROWS -> maelib.data.ett
                name = name.rsplit(".", 1)[0]
            if name in known:
                found.add(name)
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in known)
    return found


def parse(path: Path) -> ast.AST:
    """A source file's syntax tree; a file that does not parse is a ValueError naming it and the line (as
    ``runs.check_syntax`` says it), never a traceback."""
    try:
        return ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as e:
        raise ValueError(f"{path} does not parse: line {e.lineno}: {e.msg}") from None


_IMPORTS: dict[tuple, set[str]] = {}  # (path, size, mtime) -> the modules it imports


def _imports_of(name: str, path: Path, known: dict) -> set[str]:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, tuple(known))
    if key not in _IMPORTS:
        _IMPORTS[key] = imported_modules(parse(path), name, path.name == "__init__.py", known)
    return _IMPORTS[key]


def reachable(roots: set[str]) -> set[str]:
    """``roots`` and every maelib module they import, transitively."""
    files, seen, todo = module_files(), set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in files:
            continue
        seen.add(name)
        todo.extend(_imports_of(name, files[name], files))
    return seen


def chapter_modules(chapter: str) -> set[str]:
    """The maelib modules a chapter's notebook reaches: those it imports, transitively."""
    return reachable(_imports_of("notebook", notebook_of(chapter), module_files()))


SETTINGS_ONLY = {"maelib.profiles"}  # declares parameters, whose values every record's setting holds
# numbers to show beside ours (the paper's tables, other papers') and the figures' and prose helpers: no
# record's metric is computed from them, so a new published number or a larger legend splits no seeds
DISPLAY_ONLY = {"maelib.paper", "maelib.published", "maelib.viz"}


def computing(name: str) -> bool:
    """Whether module ``name`` may compute: every module but the runner's and the study's (the top two of
    ``maelib.LAYERS``, which only run, show or judge), the package's docstring, :data:`SETTINGS_ONLY` (the
    profiles' values reach a run only as its resolved parameters, which group its seeds already,
    :func:`maelib.tuning.setting`, so one chapter's new default cannot split another chapter's seeds) and
    :data:`DISPLAY_ONLY`. A module of no layer counts (tests/test_layers.py gives every module one)."""
    from . import LAYERS

    short = name.removeprefix("maelib.").split(".")[0]
    return name != "maelib" and name not in SETTINGS_ONLY | DISPLAY_ONLY and not any(short in members for _, members in LAYERS[3:])


def code_hash(chapter: str | None = None, computing_only: bool = True) -> str:
    """A hash of the source of the maelib modules ``chapter`` reaches (:func:`chapter_modules`; every
    module when ``chapter`` is None: the reference model, trained outside the chapters), by default of
    those that compute (:func:`computing`): a chapter's notebook also imports the summary's tables to show
    its own, and a change to how a table is laid out must not split its seeds."""
    files = module_files()
    names = sorted(files) if chapter is None else sorted(chapter_modules(chapter))
    h = hashlib.sha256()
    for name in names:
        if computing(name) or not computing_only:
            h.update(name.encode() + files[name].read_bytes())
    return h.hexdigest()


def version(chapter: str) -> str:
    """The version a chapter's seeds are pooled by: the computing code it reaches (:func:`code_hash`) and
    the code cells of its notebook, which decide how the arms are trained and scored (its prose does not, so mending
    a sentence does not split the seeds)."""
    return hashlib.sha256((code_hash(chapter) + notebook_code_hash(chapter)).encode()).hexdigest()


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
    text = json.dumps(params, sort_keys=True, default=str) + code_hash(chapter)
    tag = hashlib.sha1(text.encode()).hexdigest()[:10]
    root = Path(p.checkpoint_dir) if getattr(p, "checkpoint_dir", None) else cache_dir() / "runs"
    return root / f"{chapter}-{p.profile}-{tag}"


def data_key(data: dict | None) -> str | None:
    """``"<dataset>:<sha256 head>"`` of a run's data provenance (``{"dataset", "sha256", ...}``), the dataset
    name alone for an unpacked folder, None when nothing was recorded."""
    if not data:
        return None
    digest = data.get("sha256")
    return f"{data.get('dataset')}:{digest[:16]}" if digest else str(data.get("dataset"))


DATA_STAMP = "data.json"  # in a checkpoint folder: the data its checkpoints were trained on


def checkpoint_dir(chapter: str, p, data: dict | None = None, say=print) -> Path:
    """:func:`run_dir`, created and locked for this process: a second run with the same parameters and
    code waits for this one, then resumes from its checkpoints, instead of training in the same files.

    Args:
        data: the data provenance the run read (``{"dataset", "sha256", ...}``). Checkpoints made on other
            data are never resumed: they are moved aside into ``other-data-<time>/`` and the run starts anew.
    """
    folder = claim_folder(run_dir(chapter, p))
    key = data_key(data)
    stamp = folder / DATA_STAMP
    made_on = json.loads(stamp.read_text()).get("data") if stamp.is_file() else None
    if key and made_on != key:
        old = [f for f in folder.iterdir() if f.name not in (".lock", DATA_STAMP) and not f.name.startswith("other-data-")]
        if old and made_on is not None:
            aside = folder / f"other-data-{time.strftime('%Y%m%dT%H%M%S')}"
            aside.mkdir()
            for f in old:
                f.rename(aside / f.name)
            say(f"checkpoints in {folder} were trained on {made_on}, not on {key}: moved to {aside.name}/, "
                "this run starts anew")
        write_text_atomic(stamp, json.dumps({"data": key}))
    return folder


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


REFERENCE_MODEL = "image_mae_reference.pt"  # in MODELS: maelib.reference.MODEL, trained once on a CPU


def shown_image_mae(profile: str, path: str | os.PathLike | None = None) -> tuple[Path, str, bool]:
    """The image MAE a reader sees reconstructions of (the explorer, the masking page, chapter 1's figure
    beside its own run), how it was chosen, and whether it is a committed model (True) rather than a
    chapter's run:

    1. ``path`` when given;
    2. the full-profile image MAE made on a GPU and imported (``results/models/image_mae_full.pt``);
    3. the reference MAE trained once on a CPU (:data:`REFERENCE_MODEL` in :data:`MODELS`);
    4. else the image chapter's own run (:func:`image_mae_checkpoint`).
    """
    if path:
        return image_mae_checkpoint(profile, path) + (False,)
    full = MODELS / "image_mae_full.pt"
    if full.is_file():
        return full, "the full-profile image MAE made on a GPU and committed (results/models)", True
    if (MODELS / REFERENCE_MODEL).is_file():
        return (MODELS / REFERENCE_MODEL, "the reference image MAE, trained once on a CPU and committed "
                "(results/models)", True)
    return image_mae_checkpoint(profile) + (False,)


def chapters() -> dict[str, Path]:
    """Chapter name -> notebook source: ``notebooks/01_images.py`` is chapter ``images``."""
    return {f.stem.split("_", 1)[1]: f for f in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))}


def notebook_of(chapter: str) -> Path:
    known = chapters()
    if chapter not in known:
        raise KeyError(f"unknown chapter {chapter!r}; known: {', '.join(known)}")
    return known[chapter]


def git_commit() -> str | None:
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
    problem = next(filter(None, (claim_problem(k, v) for k, v in claims.items())), None)
    if problem:
        return problem
    try:
        Results.from_dict(entry["metrics"])
    except (ValueError, TypeError) as e:
        return f"its metrics do not read as a chapter's results ({e})"
    return None


def results_of(record: dict) -> Results:
    """A record's ``metrics`` as the declared :class:`~maelib.report.Results` (records are checked when
    loaded, :func:`record_problem`)."""
    return Results.from_dict(record["metrics"])


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


def record_files(root=None) -> list[Path]:
    """The JSON files of the registries ``root`` (a folder or several; None: :func:`registries`)."""
    roots = registries() if root is None else [root] if isinstance(root, (str, os.PathLike)) else root
    return [f for r in roots for f in sorted(Path(r).glob("*.json"))]


def load_records(chapter: str | None = None, root=None) -> list[dict]:
    """Finished runs from the registries ``root`` (None: the published and the local one), oldest first;
    a file that is not a record of the schema is set aside with a warning naming it."""
    out = []
    for f in record_files(root):
        entry = read_record(f)
        problem = None if entry is None else record_problem(entry)
        if problem:
            warnings.warn(f"run record {f} does not follow the schema ({problem}); it is ignored", RecordSetAside,
                          stacklevel=2)
        elif entry is not None and (chapter is None or entry["chapter"] == chapter):
            out.append(entry)
    return sorted(out, key=lambda e: e["finished"])


def publish(files=None) -> list[Path]:
    """Move local records (``files``, paths or names in :data:`LOCAL`; None: every local record) into the
    committed registry :data:`PUBLISHED`, each checked against the schema first. Returns the new paths.

    Raises ValueError naming a file that is not a local record, breaks the schema, or is already published.
    """
    chosen = sorted(LOCAL.glob("*.json")) if files is None else [Path(f) if Path(f).is_file() else LOCAL / Path(f).name
                                                                   for f in files]
    for f in chosen:
        entry = read_record(f) if f.is_file() else None
        problem = ("it is not a record in " + str(LOCAL) if entry is None or f.resolve().parent != LOCAL.resolve()
                   else record_problem(entry) or ("it is already published" if (PUBLISHED / f.name).exists() else None))
        if problem:
            raise ValueError(f"cannot publish {f}: {problem}")
    PUBLISHED.mkdir(parents=True, exist_ok=True)
    for f in chosen:
        os.replace(f, PUBLISHED / f.name)
    return [PUBLISHED / f.name for f in chosen]


def last_wall_s(chapter: str, profile: str = "auto", root=None) -> float:
    """The wall time of the newest recorded run of ``chapter`` at ``profile`` with the default parameters
    (infinite when none is recorded: an unknown chapter is taken to be long)."""
    profile = profiles.default_profile() if profile == "auto" else profile
    times = [r["wall_s"] for r in load_records(chapter, root)
             if r["profile"] == profile and is_default(r)]
    return float(times[-1]) if times else float("inf")


# parameters that do not change what a run computes (the summary's folders only say where to read): they
# never split a setting (``tuning.setting``) nor make a run other than the default
CONTROL = ("seed", "seeds", "profile", "live", "device", "data_dir", "checkpoint_dir", "tune", "records_dir",
           "executed_dir", "committed_dir")


def own_parameters(record: dict) -> dict:
    """The parameters a run was given beyond :data:`CONTROL` (a user's own rerun has some)."""
    return {k: v for k, v in (record.get("parameters") or {}).items() if k not in CONTROL}


def is_default(record: dict, allowed: tuple[str, ...] = ()) -> bool:
    """Whether a run took its chapter's default parameters: nothing given but :data:`CONTROL` (seed,
    profile...) and the names in ``allowed``. The one answer every caller uses."""
    return not set(own_parameters(record)) - set(allowed)
