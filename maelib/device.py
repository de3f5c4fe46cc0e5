"""Bring a GPU session's outputs into the repository, keeping their provenance.

A session (``benchmarks/gpu_session.py run``) leaves, under its output folder (``$OUT`` on the lent
machine, or ``../shared/device-runs/<date>/`` when it was made elsewhere)::

    executed/<stem>.ipynb, executed/<stem>.run.json   chapters executed with papermill, and their records
    records.tar                                        the run records for the registry (results/runs)
    models/image_mae_<profile>.pt                      the image MAE, fp16 (maelib.images.save_mae)
    bench.txt, session.log                             the benchmark table and every command's output

:func:`import_run` checks all of it first (every record complete, every notebook readable), then puts
the executed chapters under ``results/executed/<profile>/`` (never over a newer one), the records into
``results/runs/`` (never over an existing one; one already there is not imported twice), the weights under
``results/models/`` and the logs under ``results/device/<stamp>/``, with an ``IMPORT.json`` there that
says where they came from.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tarfile
from pathlib import Path

from . import provenance, runs
from .files import atomic_path, create_exclusive, write_text_atomic



class ImportRefused(ValueError):
    """A session's folder is not complete or not readable; nothing was imported."""


def _checked_record(where: str, record) -> dict:
    """``record`` when it passes the registry's own checks (:func:`maelib.provenance.record_problem`: every field
    of its type, the profile one of the profile names), else :class:`ImportRefused` naming ``where``."""
    problem = "it is not readable JSON" if record is None else provenance.record_problem(record)
    if problem:
        raise ImportRefused(f"{where} is not a run record of the schema ({problem})")
    return record


def _inside(path: Path, folder: Path) -> Path:
    """``path`` when it resolves inside ``folder``, else :class:`ImportRefused`: nothing a session's files
    say may write elsewhere."""
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ImportRefused(f"{path} would lie outside {folder}; nothing was imported")
    return path


def _executed(src: Path) -> list[tuple[Path, Path, dict]]:
    """(notebook, record file, record) of every executed chapter under ``src/executed``, all checked."""
    import nbformat

    out = []
    for rec in sorted((src / "executed").glob("*.run.json")):
        if rec.is_symlink():
            raise ImportRefused(f"{rec} is a link, not a run record")
        record = _checked_record(str(rec), provenance.read_record(rec))
        nb = rec.with_name(rec.name.replace(".run.json", ".ipynb"))
        if not nb.exists():
            raise ImportRefused(f"{rec} has no executed notebook beside it ({nb.name})")
        try:
            nbformat.read(nb, as_version=4)
        except Exception as e:  # noqa: BLE001 - any unreadable notebook refuses the import
            raise ImportRefused(f"{nb} is not a readable notebook ({type(e).__name__})") from None
        out.append((nb, rec, record))
    return out


def _refusal(m: tarfile.TarInfo) -> str | None:
    """Why a member of records.tar is not taken (a link, a folder, a path, not a .json), or None."""
    if not m.isfile():
        return "not a plain file (a link or a folder)"
    if "/" in m.name or "\\" in m.name or m.name.startswith((".", "..")):
        return "a path, not a plain file name"
    if not m.name.endswith(".json"):
        return "not a .json record"
    return None


def _registry_records(src: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, text) of every record in ``src/records.tar``, each checked, and the members refused, each
    with why ("<name>: <why>")."""
    tar_path = src / "records.tar"
    if not tar_path.exists():
        return [], []
    out, refused = [], []
    with tarfile.open(tar_path) as tar:
        for m in tar.getmembers():
            why = _refusal(m)
            if why:
                refused.append(f"records.tar member {m.name!r}: {why}")
                continue
            text = tar.extractfile(m).read().decode()
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                raise ImportRefused(f"{tar_path}: {m.name} is not JSON") from None
            _checked_record(f"{tar_path}: {m.name}", record)
            out.append((m.name, text))
    return out, refused


def _checked_models(src: Path) -> list[Path]:
    """The session's image MAEs (``models/image_mae_<profile>.pt``), each loaded and checked as the image
    chapter loads it; anything else refuses the import before a committed model is replaced."""
    from . import profiles
    from .images import load_mae

    folder = src / "models"
    if not folder.is_dir():
        return []
    models = sorted(folder.iterdir())
    for model in models:
        allowed = {f"image_mae_{name}.pt" for name in profiles.PROFILE_NAMES}
        if model.name not in allowed or model.is_symlink() or not model.is_file():
            raise ImportRefused(f"{model} is not one of {', '.join(sorted(allowed))} (a plain file); nothing was "
                                "imported")
        try:
            load_mae(model)
        except ValueError as e:
            raise ImportRefused(f"{e}; nothing was imported, the committed models are kept") from None
    return models


def _copy_atomic(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copy2(src, tmp)


def import_run(src: str | Path, root: str | Path = provenance.ROOT) -> dict:
    """Import the session folder ``src`` into the repository at ``root``; returns what went where."""
    src, root = Path(src), Path(root)
    if not src.is_dir():
        raise ImportRefused(f"{src} is not a folder")
    executed, (records, refused) = _executed(src), _registry_records(src)
    models = _checked_models(src)
    if not executed and not records:
        have = "; ".join(refused) if refused else "no records.tar"
        raise ImportRefused(f"{src} holds no executed chapter (executed/*.run.json) and no record to import ({have})")
    results = root / "results"
    for _, rec, record in executed:  # every destination checked before anything is written
        _inside(results / "executed" / record["profile"] / rec.name, results)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    done = {"from": str(src.resolve()), "imported": stamp, "chapters": {}, "records": [], "models": [], "logs": [],
            "skipped": list(refused)}
    for nb, rec, record in executed:
        if runs.commit_execution(nb, rec, root / "results" / "executed") is None:
            done["skipped"].append(f"{rec.name}: the committed execution is as new or newer")
            continue
        done["chapters"][record["chapter"]] = {"profile": record["profile"], "device": record.get("device"),
                                               "finished": record["finished"], "commit": record.get("git_commit")}
    registry = root / "results" / "runs"
    for name, text in records:
        if (registry / name).exists() and (registry / name).read_text() == text:
            done["skipped"].append(f"{name}: already in the registry")
            continue
        done["records"].append(create_exclusive(registry / name, text).name)
    for model in models:
        dest = root / "results" / "models" / model.name
        _copy_atomic(model, dest)
        done["models"].append(str(dest.relative_to(root)))
    logs = root / "results" / "device" / stamp
    for name in ("bench.txt", "session.log"):
        if (src / name).exists():
            logs.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / name, logs / name)
            done["logs"].append(str((logs / name).relative_to(root)))
    logs.mkdir(parents=True, exist_ok=True)
    write_text_atomic(logs / "IMPORT.json", json.dumps(done, indent=2))
    return done


def pending(shared: Path = provenance.ROOT.parent / "shared" / "device-runs") -> list[Path]:
    """Session folders under ``../shared/device-runs/`` (made on a GPU elsewhere) not imported yet."""
    if not shared.is_dir():
        return []
    seen = set()
    for f in (provenance.ROOT / "results" / "device").glob("*/IMPORT.json"):
        seen.add(json.loads(f.read_text()).get("from"))
    return [d for d in sorted(shared.iterdir()) if d.is_dir() and str(d.resolve()) not in seen]
