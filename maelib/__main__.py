"""Command line: ``python -m maelib run images -p mask_ratio 0.5``, ``python -m maelib book``,
``python -m maelib data fetch ett``."""

from __future__ import annotations

import argparse
import ast
import dataclasses
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
    from . import book, estimates, jobs, profiles, provenance, runs, tuning
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
    r.add_argument("chapter", help=f"one of: {', '.join(provenance.chapters())}")
    r.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    r.add_argument("--profile", default=None, choices=("auto",) + profiles.PROFILE_NAMES)
    r.add_argument("--force", action="store_true", help="run even if nothing changed since the last run")
    r.add_argument("--no-book", action="store_true", help="do not rebuild the book afterwards")
    r.add_argument("--out-dir", default=None,
                   help="where the executed notebook and its record go (default book/executed)")
    r.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    b = sub.add_parser("book", help="execute every chapter in _toc.yml (skipping unchanged ones), build the book")
    b.add_argument("--profile", default="auto", choices=("auto",) + profiles.PROFILE_NAMES)
    b.add_argument("--force", action="store_true")
    _add_job_options(b, "independent chapters run side by side")
    w = sub.add_parser("sweep", help="run a chapter for several seeds (and mask ratios); every run is recorded")
    w.add_argument("chapter")
    w.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="seeds (default: five, what a verdict needs)")
    w.add_argument("--power", action="store_true",
                   help="instead of --seeds: the seeds that 80%% power at the paper's gap asks (5 to 20), from the "
                        "spread of the seeds this code version recorded, less those already recorded")
    w.add_argument("--ratios", type=float, nargs="*", default=None, help="mask ratios; none: default parameters")
    w.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter every run of the sweep takes (e.g. -p precision fp32)")
    w.add_argument("--profile", default="auto", choices=("auto",) + profiles.PROFILE_NAMES)
    _add_job_options(w, "seeds run side by side")
    w.add_argument("--out-dir", default=str(provenance.ROOT / "results" / "sweeps"),
                   help="where each run's executed notebook goes, one folder a run (default results/sweeps)")
    w.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    w.add_argument("--force", action="store_true",
                   help="run every seed, also those whose run of these parameters, code version and data is "
                        "already in the sweep's registry (local, or results/runs with --publish), and those whose "
                        "executed notebook is unchanged since")
    w.add_argument("--launcher", default="local", choices=jobs.LAUNCHERS,
                   help="local: a process pool here; slurm: a SLURM job array through submitit; "
                        "submitit-local: submitit's local executor (the SLURM path tried on one machine)")
    c = sub.add_parser("check-control", help="move the book's masking slider in headless Chromium")
    c.add_argument("page", nargs="?", default=str(provenance.ROOT / "_build/html/book/chapters/06_masking.html"))
    v = sub.add_parser("device", help="import a GPU session's outputs (executed chapters, records, weights)")
    v.add_argument("action", choices=("import", "pending"))
    v.add_argument("folder", nargs="?", help="the session's output folder ($OUT, or ../shared/device-runs/<date>)")
    t = sub.add_parser("reference", help="train (or resume) the reference image MAE and save it under results/models")
    t.add_argument("action", choices=("train",))
    t.add_argument("--epochs", type=int, default=None, help="default: the schedule's (maelib.reference.SCHEDULE)")
    t.add_argument("--out", default=None, help="default results/models/image_mae_reference.pt")
    t.add_argument("--checkpoint-dir", default=None)
    u = sub.add_parser("publish", help="move runs from the local registry (results/local, ignored by git) into the "
                                       "committed one (results/runs), each checked first")
    u.add_argument("records", nargs="*", help="record files or names in results/local (default: every one)")
    d = sub.add_parser("data", help="list datasets, or fetch one from its canonical source")
    d.add_argument("action", choices=("list", "fetch"))
    d.add_argument("name", nargs="?")
    return ap


PUBLISH_HELP = ("record the run in the committed registry (results/runs), as the sweeps behind the book's "
                "verdicts do; without it a run is recorded in results/local, which git ignores")


def _records_dir(args) -> Path:
    """Where a run's record goes: the committed registry with --publish, else the local one."""
    return provenance.PUBLISHED if args.publish else provenance.RECORDS


def publish(args, ap) -> int:
    for path in provenance.publish(args.records or None):
        print(path)
    return 0


def _add_job_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--jobs", type=int, default=None,
                   help=f"how many runs at once ({what}); default: one per core ({jobs.cores()} here), or for "
                        "a sweep's seeds as many as ends them soonest (five seeds on two cores: all five)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per run (torch, OpenMP, BLAS); default: the cores divided among the jobs")


def _job_settings(args, n_runs: int, equal: bool = True) -> tuple[int, int]:
    """(jobs at once, threads per job), refused before anything runs when out of range. By default equal
    runs (a sweep's seeds) start as :func:`maelib.jobs.default_jobs` balances them; unequal ones (the
    book's chapters, longest first) one per core."""
    n_jobs = args.jobs if args.jobs is not None else jobs.default_jobs(n_runs) if equal else min(jobs.cores(), max(1, n_runs))
    if n_jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {n_jobs}")
    threads = jobs.threads_per_job(n_jobs) if args.threads is None else args.threads
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    return n_jobs, threads


def run(args, ap) -> int:
    params = {k: _value(v) for k, v in args.param}
    if args.profile:
        params["profile"] = args.profile
    provenance.notebook_of(args.chapter)
    resolved = profiles.resolve(args.chapter, **params)  # bad input fails here, before any compute
    note = estimates.note(args.chapter, vars(resolved))  # a rerun that will choose learning rates again, or reuses
    cost = estimates.cost_phrase(args.chapter, resolved.profile, precision=_precision(resolved), resolved=vars(resolved))
    note = note and f"{note}; {cost}"  # the default setting's
    out_dir = Path(args.out_dir) if args.out_dir else provenance.EXECUTED
    print(runs.run_chapter(args.chapter, params, force=args.force, out_dir=out_dir, note=note,
                           records_dir=_records_dir(args)))
    if not args.no_book:
        try:
            print(book.build(profile=resolved.profile))
        except book.MissingExecutions as e:  # the run itself is recorded; the book needs every chapter
            print(f"the book was not rebuilt: {one_line(e)}", file=sys.stderr)
    return 0


def build(args, ap) -> int:
    """Chapters that read no other chapter's results run side by side (the longest first, by their last
    recorded wall time, so that the cores end together), then those that read them."""
    profile = profiles.default_profile() if args.profile == "auto" else args.profile
    chapters = []
    for c in runs.toc_chapters():
        kept = None if args.force else book.current_committed(c, profile)
        if kept:
            made = ("this notebook's code cells and this code (its prose edited since)"
                    if book.prose_changed(c, kept.record) else "this notebook and code")
            print(f"{c}: shows its committed {kept.record['profile']} execution (commit "
                  f"{(kept.record.get('git_commit') or 'unknown')[:8]}), made by {made}; not run again")
        else:
            chapters.append(c)
    first = sorted((c for c in chapters if runs.independent(c)), key=lambda c: -provenance.last_wall_s(c, args.profile))
    n_jobs, threads = _job_settings(args, len(first), equal=False)
    params = {"profile": args.profile}
    started = time.time()
    jobs.launch([jobs.Job(c, params, threads=threads, label=c, progress=n_jobs == 1, force=args.force)
                 for c in first], n_jobs)
    alone = args.threads or jobs.cores()  # the chapters that read the others run one at a time, on every core
    jobs.launch([jobs.Job(c, params, threads=alone, label=c, progress=True, force=args.force)
                 for c in chapters if c not in first], 1)
    print(f"chapters: {(time.time() - started) / 60:.1f} min ({n_jobs} job(s) at once, {threads} thread(s) each)")
    print(book.build(profile=profile))
    return 0


def sweep(args, ap) -> int:
    if args.power:
        from . import summary

        profile = profiles.default_profile() if args.profile == "auto" else args.profile
        args.seeds, why = summary.seeds_needed(args.chapter, profile, summary.load())
        print(f"{args.chapter}: {why}; to run: {' '.join(map(str, args.seeds)) or 'none'}", flush=True)
        if not args.seeds:
            return 0
    if len(set(args.seeds)) < len(args.seeds):  # two runs of one seed would train in one folder at once
        raise ValueError(f"--seeds must not repeat a seed, got {' '.join(map(str, args.seeds))}")
    if args.ratios is not None and not args.ratios:
        raise ValueError("--ratios needs at least one mask ratio (e.g. --ratios 0.25 0.5 0.75); leave it out to "
                         "run the default parameters")
    given = {k: _value(v) for k, v in args.param}
    for name, option in (("seed", "--seeds"), ("seeds", "--seeds"), ("profile", "--profile")):
        if name in given:
            raise ValueError(f"-p {name} is not a sweep parameter: give it with {option}")
    grid = [{**given, "mask_ratio": r} for r in args.ratios] if args.ratios else [given]
    for extra in grid:  # validate everything before running anything
        for seed in args.seeds:  # the computation asked on tiny inputs too, before any job starts
            runs.preflight(args.chapter, profiles.resolve(args.chapter, profile=args.profile, seed=seed, **extra))
    sweep_dir = Path(args.out_dir)  # executed notebooks of sweeps (results/sweeps is ignored by git)
    todo, tag = [], "".join(f"-{k}-{v}" for k, v in given.items())  # sweeps of other parameters: other folders
    for extra in grid:
        ratio = extra.get("mask_ratio", "default")
        for seed in args.seeds:
            label = f"seed {seed}" + (f", mask {ratio}" if "mask_ratio" in extra else "")
            todo.append(jobs.Job(args.chapter, {"profile": args.profile, "seed": seed, **extra},
                                 out_dir=str(sweep_dir / f"{args.chapter}-{seed}-{ratio}{tag}"),
                                 records_dir=str(_records_dir(args)), label=label, force=args.force))
    pages = []  # skipped seeds' pages: an interrupted published sweep never reached its end, which commits them
    if not args.force:
        todo, pages = _not_recorded(args.chapter, todo, _records_dir(args))
    n_jobs, threads = _job_settings(args, max(1, len(todo)))  # the seeds left to run share the cores
    todo = [dataclasses.replace(j, threads=threads, progress=n_jobs == 1) for j in todo]
    for job in todo:  # the arms no mask ratio changes: from the default ratio's run of the seed, where it ran here
        copied = jobs.reuse_ratio_free(args.chapter, job.params)
        if copied:
            print(f"{job.label}: resumes {', '.join(copied)} from the default mask ratio's run of its seed (those "
                  "arms never see the MAE)", flush=True)
    first, rest = _tuning_first(args.chapter, todo)
    if first:
        resolved = profiles.resolve(args.chapter, **first[0].params)
        cost = estimates.cost_phrase(args.chapter, resolved.profile, precision=_precision(resolved),
                                     resolved=vars(resolved))
        print(f"{', '.join(j.label for j in first)}: chooses the learning rates first (none is recorded for this "
              f"setting and code); the other seeds then reuse the choice; {cost}", flush=True)
    n_first = min(n_jobs, max(1, len(first)))  # one per setting; several settings side by side
    first = [dataclasses.replace(j, threads=args.threads or jobs.threads_per_job(n_first)) for j in first]
    for path in jobs.launch(first, n_first, launcher=args.launcher) + jobs.launch(rest, n_jobs,
                                                                                   launcher=args.launcher):
        print(path)
    if args.publish:
        _commit_shown(args.chapter, [j for j in todo + pages if not given and "mask_ratio" not in j.params])
    return 0


def _not_recorded(chapter: str, todo: list, root: Path) -> tuple[list, list]:
    """(the jobs of ``todo`` to run, the skipped jobs whose own folder holds the page of the run recorded for
    them). A job is skipped, and named, where the registry ``root`` (the sweep's own: the local one, or the
    committed one with --publish) records a run of its seed with the same parameters (:func:`_computed`), code
    version and data as the newest run of that setting: a sweep started again after an interruption would
    otherwise run its finished seeds again from their checkpoints (a minute or two each) and record them
    twice, the second time with the minutes of that rerun as the run's time, which the estimates then read
    as a seed's (2026-12-07: "about 2.1 min" for a volumes seed of over an hour). Data replaced in place
    (same folder, same parameters) is not known before a run: --force runs such seeds again."""
    version, newest, done = provenance.version(chapter), {}, {}
    for r in provenance.load_records(chapter, root):  # oldest first: the newest data of a setting wins
        if provenance.pool_version(r) == version:
            key = _computed(r["resolved"])
            newest[key] = provenance.data_key(r.get("data"))
            done[(r["seed"], key, newest[key])] = r
    left, pages = [], []
    for job in todo:
        p = profiles.resolve(chapter, **job.params)
        key = _computed(vars(p))
        found = done.get((p.seed, key, newest.get(key)))
        if found is None:
            left.append(job)
            continue
        print(f"{job.label}: already recorded at this code version ({found['finished'][:16]}, {root}), "
              "skipped; --force runs it again", flush=True)
        page = Path(job.out_dir or "") / f"{provenance.notebook_of(chapter).stem}.run.json"
        if job.out_dir and page.exists() and (provenance.read_record(page) or {}).get("finished") == found["finished"]:
            pages.append(job)
    return left, pages


NOT_COMPUTING = ("seed", "live", "device", "checkpoint_dir", "records_dir", "executed_dir", "committed_dir")


def _computed(resolved: dict) -> str:
    """What a run of one seed computes, as a sorted JSON text: its resolved parameters (the profile among
    them) but those that only say where to read checkpoints from or where to write and show
    (:data:`NOT_COMPUTING`). Unlike :func:`maelib.tuning.setting`, ``tune``, ``seeds`` and ``data_dir`` count:
    they change the learning rates, the seeds a run trains or the data it reads."""
    return json.dumps({k: v for k, v in resolved.items() if k not in NOT_COMPUTING}, sort_keys=True, default=str)


def _commit_shown(chapter: str, default_jobs: list, committed: Path = provenance.COMMITTED) -> None:
    """A published sweep's tuning-seed run of the default setting becomes the chapter's committed
    execution at its profile (``results/executed/<profile>/``): the page the book shows, so that a build
    from a fresh checkout does not train the chapter again while its notebook and code are unchanged."""
    stem = provenance.notebook_of(chapter).stem
    for job in default_jobs:
        nb, rec = Path(job.out_dir) / f"{stem}.ipynb", Path(job.out_dir) / f"{stem}.run.json"
        if job.params.get("seed") == tuning.TUNING_SEED and rec.exists():
            kept = runs.commit_execution(nb, rec, committed)
            print(f"{chapter}: {'committed as the page the book shows: ' + str(kept) if kept else 'the committed execution is as new or newer; kept'}")


def _precision(resolved) -> str:
    """A resolved chapter's precision (fp32 for chapters that train nothing)."""
    return getattr(resolved, "precision", None) or "fp32"


def _tuning_first(chapter: str, todo: list) -> tuple[list, list]:
    """(jobs to run before the others, the others): a chapter that chooses its learning rates on held-out
    data (it has an ``lr_grid``) has the tuning seed's run choose them, and the other seeds reuse that
    choice; run side by side with it, they would each choose their own instead. So where no choice is
    recorded for a job's setting and code, the tuning seed's job of that setting goes first."""
    if "lr_grid" not in profiles.SPECS.get(chapter, {}):
        return [], todo
    first = []
    for job in todo:
        if job.params.get("seed") == tuning.TUNING_SEED:
            p = profiles.resolve(chapter, **job.params)
            if estimates.will_choose(chapter, vars(p)):  # not where every arm's rate is given
                first.append(job)
    return first, [j for j in todo if j not in first]


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


def reference_model(args, ap) -> int:
    """Train (or resume) the reference image MAE, recording the code it was trained with."""
    from . import reference

    stamp = {"command": "python -m maelib reference train" + (f" --epochs {args.epochs}" if args.epochs else ""),
             "code_version": provenance.code_hash(), "git_commit": provenance.git_commit(),
             "environment": provenance.environment()}
    prov = reference.train(stamp, Path(args.out) if args.out else reference.MODEL, args.checkpoint_dir,
                           epochs=args.epochs)
    print(f"saved {args.out or reference.MODEL} ({prov['epochs']} epochs, {prov['train_s'] / 60:.1f} min of training)")
    return 0


COMMANDS = {"run": run, "book": build, "sweep": sweep, "check-control": check_control, "device": device_runs,
            "data": data, "reference": reference_model, "publish": publish}


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
    except (runs.ChapterFailed, registry.DataError, FloatingPointError, provenance.NoCheckpointError,
            book.MissingExecutions, jobs.JobDied) as e:
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
    code = main(argv)
    if code == 130:  # interrupted: end here, before the interpreter's clean-up, whose handlers (the kernel
        sys.stdout.flush()  # client's) could let the Ctrl-C through as a death by signal (exit -2, not 130)
        sys.stderr.flush()
        os._exit(130)
    return code


if __name__ == "__main__":
    sys.exit(program())
