"""Files that are never half-written and folders that one run at a time may train in.

- :func:`atomic_path`: write to a temporary name unique to this process and call, then rename into place,
  so a reader sees the old file or the new one, never a partial one, and two writers never share a
  temporary file.
- :func:`create_exclusive`: write a new file under a name that no other file has, adding ``-2``,
  ``-3``... when the name is taken (two runs finishing in the same second both keep their record).
- :func:`file_lock`: an exclusive lock for a block, so that the first of several processes that need the
  same cache file makes it and the others wait, then read it (a decoded dataset is made once).
- :func:`writable_folder`: create a folder a run will write in and prove it can write there, before the
  run computes anything.
- :func:`claim_folder`: an exclusive lock on a folder for the rest of the process (a second process
  with the same folder waits), after which temporary files left there by dead processes are removed.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


TMP_SUFFIX = ".tmp"
_HELD: dict[Path, int] = {}  # folder -> open lock file descriptor, kept for the process's lifetime


class NotWritable(ValueError):
    """A folder a run would write in cannot be created or written in; the message names it."""


def writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """``folder``, created if needed, once a probe file was written in it and removed; else
    :class:`NotWritable` naming ``what`` (e.g. "the run registry (MAELIB_RECORDS)") and the path."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_name(folder / "write-check")
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise NotWritable(f"{what} {folder} is not a folder this run can write in "
                          f"({type(e).__name__}: {e.strerror or e})") from None
    return folder


def temporary_name(path: Path) -> Path:
    """``.<name>.<pid>-<random>.tmp`` beside ``path``: unique to this process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """``with atomic_path(p) as tmp: write(tmp)``: ``tmp`` replaces ``p`` only if the block finished."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_torch_atomic(obj, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def create_exclusive(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a new file at ``path`` (or ``<stem>-2<suffix>``, ... if taken); return its path.
    The file appears whole (hard-linked from a finished temporary file), and an existing one is never
    overwritten."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        tmp.write_text(text)  # inside the try: a full disk leaves no empty temporary file behind
        for n in range(1, 1000):
            target = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
        raise FileExistsError(f"no free name for {path} after 999 tries")
    finally:
        tmp.unlink(missing_ok=True)


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that named ``tmp`` (``.<name>.<pid>-<random>.tmp``, or ``.running-<pid>-...``
    for a chapter's working folder) still runs."""
    try:
        if tmp.name.startswith(".running-"):
            pid = int(tmp.name.split("-")[1])
        else:
            pid = int(tmp.name[: -len(TMP_SUFFIX)].rsplit(".", 1)[-1].split("-")[0])
    except (ValueError, IndexError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: str | os.PathLike, everything: bool = False) -> list[Path]:
    """Remove temporary files in ``folder`` whose writer is gone (all of them with ``everything``, for a
    folder this process holds the lock of); return what was removed."""
    folder = Path(folder)
    removed = []
    for tmp in [*folder.glob(f"*{TMP_SUFFIX}"), *folder.glob(".running-*")] if folder.is_dir() else []:
        if everything or not _writer_alive(tmp):
            if tmp.is_dir():
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def claim_folder(folder: str | os.PathLike, say=print) -> Path:
    """Create ``folder`` and hold an exclusive lock on it until this process ends; if another process
    holds it, say so and wait. Then remove the temporary files left in it. Returns the folder."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if folder.resolve() in _HELD:
        return folder
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say(f"another run with the same parameters is training in {folder}; waiting for it to finish "
            "(this run then resumes from its checkpoints)")
        fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD[folder.resolve()] = fd
    clean_stale(folder, everything=True)
    return folder


@contextlib.contextmanager
def file_lock(path: str | os.PathLike):
    """``with file_lock(cache): make it unless it exists``: one process at a time holds the lock, a file
    ``.<name>.lock`` beside ``path`` (released when the block ends, or when the process dies)."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)


def release_folder(folder: str | os.PathLike) -> None:
    """Give up the lock :func:`claim_folder` took (it is also released when the process ends)."""
    fd = _HELD.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)
