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
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from . import catalog, profiles
from .data.registry import cache_dir
from .files import clean_stale, create_exclusive, writable_folder, write_text_atomic
from .provenance import (COMMITTED, EXECUTED, MODELS, RECORDS, ROOT, chapters, code_hash,
                         environment, git_commit, image_mae_checkpoint, notebook_hash, notebook_of, read_record,
                         record_files, run_dir, threads, version)
from .report import Results



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


def stamp(chapter: str, params: dict) -> str:
    """A hash of what determines a chapter's output: its notebook, its parameters and maelib's code (and
    for chapters that read other runs' records, which records there are)."""
    h = hashlib.sha256(notebook_of(chapter).read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(code_hash(chapter, computing_only=False).encode())
    declared = catalog.of(chapter)
    if declared.reads_executed:  # every record it may show, local and committed
        committed = sorted(Path(params.get("committed_dir") or COMMITTED).glob("*"))  # one folder a profile
        for folder in (Path(params.get("executed_dir") or EXECUTED), *committed):
            for f in sorted(folder.glob("*.run.json")):
                if not f.name.startswith(notebook_of(chapter).stem):
                    h.update(str(f).encode() + (read_record(f) or {}).get("stamp", "").encode())
    for model in declared.reads_models:  # the committed models it may show
        if (MODELS / model).exists():
            h.update(str((MODELS / model).stat().st_mtime_ns).encode())
    if declared.reads_records:
        reads = declared.reads_records
        names = [f.name for f in record_files() if f.name.split("-")[0] != chapter
                 and (reads == catalog.EVERY or f.name.split("-")[0] in reads)]
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
    if catalog.of(chapter).reads_executed and Path(out_dir).resolve() != EXECUTED.resolve():
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
    started, code, pooled = time.time(), code_hash(chapter), version(chapter)  # the code as it was when the run began
    resumed = resumes(chapter, resolved)
    from .estimates import expected_s

    expected = expected_s(chapter, vars(resolved))  # by the recorded runs, for the time left it shows
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".running-{os.getpid()}-") as tmp:  # beside the result
        done_nb = Path(tmp) / out_nb.name
        values = _execute(chapter, src, params, done_nb, progress, expected)
        if not isinstance(values.get("params"), dict):
            raise ChapterFailed(chapter, "RuntimeError", "the chapter did not glue 'params' (its resolved "
                                "parameters)", params)
        ran = values["params"]  # what the notebook itself resolved
        try:  # the declared shape, checked before anything is recorded
            results = Results.from_dict(values.get("results", {})).to_dict()
        except (ValueError, TypeError) as e:
            raise ChapterFailed(chapter, "ValueError", f"the chapter's glued results are malformed: {e}", params) from None
        entry = {
            "chapter": chapter, "notebook": src.name, "parameters": params, "resolved": ran,
            "profile": ran.get("profile", resolved.profile), "seed": ran.get("seed"), "device": values.get("device"),
            "metrics": results, "wall_s": round(time.time() - started, 1),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(), "git_commit": git_commit(), "stamp": key,
            "engine": "papermill", "code": code, "version": pooled, "notebook_sha": notebook_hash(chapter),
            "data": values.get("data_source"), "environment": environment(), "threads": threads(),
            "resumed": resumed,
        }
        text = json.dumps(entry, indent=2, default=str)
        try:
            if records_dir is not None:
                stamp_time = entry["finished"][:19].replace(":", "").replace("-", "")
                create_exclusive(Path(records_dir) / f"{chapter}-{stamp_time}-{key[:8]}.json", text)
            os.replace(done_nb, out_nb)
            write_text_atomic(record, text)
        except OSError as e:  # a full disk, say: the finished work is kept, and nothing is recorded
            kept = _keep(done_nb, out_dir)
            raise ChapterFailed(chapter, "OSError", f"the run finished but its record could not be written "
                                f"({e.strerror or e}: {e.filename or records_dir}); the executed notebook was "
                                f"kept at {kept}", params) from None
    return out_nb


def resumes(chapter: str, p) -> bool:
    """Whether a run of the resolved parameters ``p`` starts from checkpoints already in its folder
    (:func:`maelib.provenance.run_dir`, a relative ``checkpoint_dir`` read from the repository, where the
    kernel runs): an interrupted run's, or the arms a mask-ratio run takes from the default ratio's run. Its
    record's ``wall_s`` is then only the part it ran itself, which the estimates do not take for a run's time.
    Told before the run starts, so checkpoints of other data (set aside when the run reads its data) count,
    and a run that waits for an identical one to finish does not."""
    folder = run_dir(chapter, p)
    folder = folder if folder.is_absolute() else ROOT / folder
    return folder.is_dir() and any(not f.relative_to(folder).parts[0].startswith("other-data-")
                                   for f in folder.rglob("*.pt"))


def commit_execution(nb: Path, record_file: Path, committed: Path = COMMITTED) -> Path | None:
    """Keep the executed chapter ``nb`` and its run record ``record_file`` as the committed execution of
    the record's profile (``committed/<profile>/<stem>.ipynb`` and ``.run.json``), which the book shows
    without running the chapter again while its notebook and code are unchanged. An execution as new or
    newer already there is kept instead. Returns the committed notebook's path, or None when nothing was
    replaced."""
    from .files import atomic_path

    record = read_record(record_file)
    dest = Path(committed) / record["profile"]
    rec = dest / f"{Path(nb).stem}.run.json"
    held = read_record(rec) if rec.exists() else None
    if held and held.get("finished", "") >= record["finished"]:
        return None
    with atomic_path(dest / Path(nb).name) as tmp:
        tmp.write_bytes(Path(nb).read_bytes())
    write_text_atomic(rec, Path(record_file).read_text())
    return dest / Path(nb).name


def _keep(done_nb: Path, out_dir: Path) -> Path:
    """Move a finished notebook whose record could not be written out of its working folder (a rename on
    the same disk: it needs no space), as ``<stem>.unrecorded-<time>.ipynb``; where it already went, there."""
    if not done_nb.exists():
        return out_dir / done_nb.name
    kept = out_dir / f"{done_nb.stem}.unrecorded-{time.strftime('%Y%m%dT%H%M%S')}.ipynb"
    os.replace(done_nb, kept)
    return kept


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

        from .reference import checkpoint

        load_mae(image_mae_checkpoint(p.profile, checkpoint(p.mae_checkpoint))[0])
    check = catalog.of(chapter).own_check()  # the chapter's own check, declared in maelib.catalog
    if check:
        check(p, device)


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


def independent(chapter: str) -> bool:
    """Whether a chapter reads no other chapter's results (so it may run beside the others)."""
    declared = catalog.of(chapter)
    return not declared.reads_records and not declared.reads_executed


def toc_chapters(root: Path = ROOT) -> list[str]:
    """Chapter names in the order ``_toc.yml`` lists them (by their notebooks' names)."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    names = {v.stem: k for k, v in chapters().items()}
    return [names[Path(f).stem] for f in files if Path(f).stem in names]
