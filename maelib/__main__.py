"""Command line: ``python -m maelib run images -p mask_ratio 0.5``, ``python -m maelib book``,
``python -m maelib data fetch ett``."""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path


def _quit_at_once(signum, frame):
    """A Ctrl-C while the library loads ends the process at once: nothing has run yet, and an import
    interrupted half-way can fail again on the next import (scipy's lazy modules, numpy's extension)."""
    print("interrupted", file=sys.stderr, flush=True)
    os._exit(130)


if __name__ == "__main__" and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, _quit_at_once)  # until program() installs _on_sigint

try:  # importing the library (torch) takes seconds: a Ctrl-C then ends as quietly as during a run
    from . import book, profiles, runs
    from .data import registry
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)


def _value(text: str):
    """'0.5' -> 0.5, 'true' -> True, '[0.25, 0.5]' -> list; anything else stays a string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m maelib", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute one chapter with papermill, then rebuild the book")
    r.add_argument("chapter", help=f"one of: {', '.join(runs.chapters())}")
    r.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    r.add_argument("--profile", default=None, choices=("auto",) + profiles.PROFILE_NAMES)
    r.add_argument("--force", action="store_true", help="run even if nothing changed since the last run")
    r.add_argument("--no-book", action="store_true", help="do not rebuild the book afterwards")
    r.add_argument("--out-dir", default=None,
                   help="where the executed notebook and its record go (default book/executed)")
    b = sub.add_parser("book", help="execute every chapter in _toc.yml (skipping unchanged ones), build the book")
    b.add_argument("--profile", default="auto", choices=("auto",) + profiles.PROFILE_NAMES)
    b.add_argument("--force", action="store_true")
    w = sub.add_parser("sweep", help="run a chapter for several seeds (and mask ratios); every run is recorded")
    w.add_argument("chapter")
    w.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="seeds (default: five, what a verdict needs)")
    w.add_argument("--ratios", type=float, nargs="*", default=None, help="mask ratios; none: default parameters")
    w.add_argument("--profile", default="auto", choices=("auto",) + profiles.PROFILE_NAMES)
    c = sub.add_parser("check-control", help="move the book's masking slider in headless Chromium")
    c.add_argument("page", nargs="?", default=str(runs.ROOT / "_build/html/book/chapters/06_masking.html"))
    v = sub.add_parser("device", help="import a GPU session's outputs (executed chapters, records, weights)")
    v.add_argument("action", choices=("import", "pending"))
    v.add_argument("folder", nargs="?", help="the session's output folder ($OUT, or ../shared/device-runs/<date>)")
    d = sub.add_parser("data", help="list datasets, or fetch one from its canonical source")
    d.add_argument("action", choices=("list", "fetch"))
    d.add_argument("name", nargs="?")
    return ap


def run(args, ap) -> int:
    params = {k: _value(v) for k, v in args.param}
    if args.profile:
        params["profile"] = args.profile
    runs.notebook_of(args.chapter)
    profiles.resolve(args.chapter, **params)  # bad input fails here, before any compute
    out_dir = Path(args.out_dir) if args.out_dir else runs.EXECUTED
    print(runs.run_chapter(args.chapter, params, force=args.force, out_dir=out_dir))
    if not args.no_book:
        try:
            print(book.build())
        except book.MissingExecutions as e:  # the run itself is recorded; the book needs every chapter
            print(f"the book was not rebuilt: {one_line(e)}", file=sys.stderr)
    return 0


def build(args, ap) -> int:
    for chapter in runs.toc_chapters():
        runs.run_chapter(chapter, {"profile": args.profile}, force=args.force)
    print(book.build())
    return 0


def sweep(args, ap) -> int:
    grid = [{"mask_ratio": r} for r in args.ratios] if args.ratios else [{}]
    for extra in grid:  # validate everything before running anything
        for seed in args.seeds:
            profiles.resolve(args.chapter, profile=args.profile, seed=seed, **extra)
    sweep_dir = runs.ROOT / "results" / "sweeps"  # executed notebooks of sweeps (ignored by git)
    for extra in grid:
        for seed in args.seeds:
            out = sweep_dir / f"{args.chapter}-{seed}-{extra.get('mask_ratio', 'default')}"
            print(runs.run_chapter(args.chapter, {"profile": args.profile, "seed": seed, **extra}, out_dir=out))
    return 0


def check_control(args, ap) -> int:
    from .browser import check_static_control

    report = check_static_control(args.page)
    print(json.dumps(report, indent=2))
    return 0 if report.get("changed") else 1


def device_runs(args, ap) -> int:
    from . import device

    if args.action == "pending":
        for folder in device.pending():
            print(folder)
    elif not args.folder:
        ap.error("device import needs the session's folder")
    else:
        print(json.dumps(device.import_run(args.folder), indent=2))
    return 0


def data(args, ap) -> int:
    if args.action == "list":
        for ds in registry.DATASETS.values():
            print(f"{ds.name:14s} {ds.folder:20s} {ds.url or '(manual download)'}")
    elif not args.name:
        ap.error("data fetch needs a dataset name")
    else:
        print(registry.fetch(args.name))
    return 0


COMMANDS = {"run": run, "book": build, "sweep": sweep, "check-control": check_control, "device": device_runs,
            "data": data}


GRACE_S = 10.0  # after a Ctrl-C, how long the kernel's shutdown may take before the run is ended by force


def _stop_children() -> None:
    """Kill this process's children (a chapter's kernel), so that none outlives an interrupted run."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass


def _quiet_children() -> None:
    """Kill the children and silence the logs that report their end (a dead kernel's task, at exit)."""
    import logging

    logging.disable(logging.CRITICAL)
    _stop_children()


def _interrupted() -> int:
    _quiet_children()
    print("interrupted", file=sys.stderr, flush=True)
    return 130


def _on_sigint(signum, frame):
    """A Ctrl-C first kills the chapter's kernel, so that it cannot print its own interrupted cell's
    traceback, then raises KeyboardInterrupt as usual; should the clean-up it starts hang (a kernel that
    never answers its shutdown request), the run still ends within GRACE_S: no record is written until a
    run has finished, so nothing half-done is kept."""
    def force():
        time.sleep(GRACE_S)
        os._exit(_interrupted())

    _quiet_children()
    threading.Thread(target=force, daemon=True).start()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    raise KeyboardInterrupt


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    try:
        return COMMANDS[args.cmd](args, ap)
    except KeyboardInterrupt:
        return _interrupted()
    except (runs.ChapterFailed, registry.DataError, FloatingPointError, runs.NoCheckpointError,
            book.MissingExecutions) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
    except (ValueError, KeyError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2


def one_line(e: BaseException) -> str:
    """An exception's message on one line (a KeyError's quotes dropped)."""
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(str(text).split())


def program(argv=None) -> int:
    """:func:`main` as the ``python -m maelib`` process: there a Ctrl-C also ends the run by force should
    its clean-up hang (see :func:`_on_sigint`); main() called from Python leaves signals alone."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
    return main(argv)


if __name__ == "__main__":
    sys.exit(program())
