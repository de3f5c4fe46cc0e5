"""Independent chapter runs side by side: a sweep's seeds, or the book's independent chapters.

Small models do not scale across threads, so two one-thread processes do more work per CPU hour than
one two-thread process. A :class:`Job` is one chapter run; :func:`run_job` runs it with its thread
count pinned (torch, OpenMP and the BLAS libraries, in this process and in the chapter's kernel), the
same function whichever engine calls it:

- ``launcher="local"``: a ``concurrent.futures`` process pool on this machine (``n_jobs`` at once);
- ``launcher="slurm"``: a SLURM job array through submitit, one task per job;
- ``launcher="submitit-local"``: submitit's local executor, the SLURM path tried on one machine.

Nothing here schedules: the pool or the cluster does. Correctness comes from what a run already does:
each run trains in its own locked checkpoint folder (:func:`maelib.files.claim_folder`), decoded-data
caches are written once under a lock (:func:`maelib.files.cached`), and a record is written only when
its notebook finished, so a job killed midway leaves nothing recorded. When one job fails (or Ctrl-C),
the others are ended with their kernels and the first error is raised.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
LAUNCHERS = ("local", "slurm", "submitit-local")


def cores() -> int:
    """The CPU cores this process may use (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs(n_runs: int, most_per_core: int = 3) -> int:
    """How many of ``n_runs`` equal one-thread runs to start at once so that they end soonest: one per
    core, or more where that balances the cores (five seeds on two cores: all five at once share the
    cores to the end, where two at a time would leave the fifth alone on one core), at most
    ``most_per_core`` per core (memory); the fewest among equally quick choices."""
    c = cores()
    if n_runs <= c:
        return max(1, n_runs)
    def makespan(j):  # in lone-run times: rounds of j runs, each round slowed when j exceeds the cores
        return math.ceil(n_runs / j) * max(1.0, j / c)
    return min(range(c, min(n_runs, most_per_core * c) + 1), key=lambda j: (makespan(j), j))


def threads_per_job(n_jobs: int) -> int:
    """Each job's share of the cores (at least one thread)."""
    return max(1, cores() // max(1, n_jobs))


@dataclass(frozen=True)
class Job:
    """One chapter run: what :func:`maelib.runs.run_chapter` needs, its thread count and a label that
    prefixes every line it prints (``seed 3``, or the chapter's name)."""

    chapter: str
    params: dict = field(default_factory=dict)
    out_dir: str | None = None  # None: book/executed
    threads: int | None = None  # None: leave the process's thread settings alone
    label: str = ""
    progress: bool = False  # a live progress line (one job alone on a terminal only; else throttled lines)
    force: bool = False  # run even when nothing changed since the last run
    records_dir: str | None = None  # where the record goes (None: the local registry, or $MAELIB_RECORDS)


def pin_threads(n: int) -> None:
    """Pin torch, OpenMP and the BLAS libraries to ``n`` threads here and in kernels started from here."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    if "torch" in sys.modules:  # already imported: its pool was sized before the variables were set
        sys.modules["torch"].set_num_threads(n)


class _Prefixed(io.TextIOBase):
    """A text stream that writes ``[label] `` before every line it passes on to ``stream``.

    Jobs running side by side share one pipe, so each line goes out with its prefix in a single write (a
    write under the pipe's atomic size is never split by another process's): text is held until its line
    ends (``\\n`` or ``\\r``), or until :meth:`flush`, which passes on a partial line (a live progress row).
    A lock keeps the lines of this process's threads (the progress watcher's, the chapter's) whole too.
    """

    def __init__(self, stream, label: str):
        self.stream, self.prefix, self.at_start = stream, f"[{label}] ", True
        self.pending, self.lock = "", threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            pieces = (self.pending + text).splitlines(keepends=True)
            self.pending = pieces.pop() if pieces and not pieces[-1].endswith(("\n", "\r")) else ""
            self._send(pieces)
        return len(text)

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, ""
            self._send([pending] if pending else [])

    def _send(self, pieces: list[str]) -> None:
        """Pass ``pieces`` on in one write, a prefix before each that starts a line."""
        out = []
        for piece in pieces:
            out.append(self.prefix + piece if self.at_start else piece)
            self.at_start = piece.endswith(("\n", "\r"))
        if out:
            self.stream.write("".join(out))
        self.stream.flush()


@contextlib.contextmanager
def _prefixed(label: str):
    if not label:
        yield
        return
    out, err = _Prefixed(sys.stdout, label), _Prefixed(sys.stderr, label)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:  # a last line left without its end
        out.flush()
        err.flush()


def reuse_ratio_free(chapter: str, params: dict) -> list[str]:
    """For a run of ``chapter`` whose ``params`` change its claim's mask ratio from the profile's: copy into
    its checkpoint folder the checkpoints of the default ratio's run (the same parameters otherwise, so the
    same seed) of the arms that never see the MAE (:attr:`maelib.catalog.Chapter.ratio_free_arms`) and of
    their learning-rate trials, as far as that run trained them, where it has none of that name. Those arms
    train the same network on the same data from the same seed at any ratio, so the run resumes them instead
    of training them again (what it resumes is what it would have trained, on a device that trains
    deterministically, as a CPU does). One whose schedule the ratio does change (the budget-matched arm's
    epochs follow the MAE's pretraining FLOPs) does not match its checkpoint's fingerprint and trains anew
    (:func:`maelib.train.fit`); checkpoints of other data are set aside
    (:func:`maelib.provenance.checkpoint_dir`).

    Returns:
        The names of the checkpoint files copied (none where the default run left none here).
    """
    from . import catalog, profiles, provenance
    from .files import atomic_path
    from .train import checkpoint_file

    entry = catalog.of(chapter)
    ratio = next((c.ratio_parameter for c in entry.claims if c.ratio_parameter), None)
    if not entry.ratio_free_arms or ratio not in params:
        return []
    run = profiles.resolve(chapter, **params)
    default = profiles.resolve(chapter, **{k: v for k, v in params.items() if k != ratio})
    if getattr(run, ratio) == getattr(default, ratio):
        return []
    source, target = provenance.run_dir(chapter, default), provenance.run_dir(chapter, run)
    stamps = [folder / provenance.DATA_STAMP for folder in (source, target)]
    if all(s.is_file() for s in stamps) and stamps[0].read_text() != stamps[1].read_text():
        return []  # the two were trained on other data
    def stem(desc: str) -> str:  # the file name a training of that description checkpoints to, less ".pt"
        return Path(checkpoint_file(source, desc)).stem

    found = [f for f in sorted(source.glob("*.pt"))  # each arm, and its trials ("tune <arm> lr=<rate>")
             if any(f.stem == stem(arm) or f.stem.startswith(stem(f"tune {arm} lr=")) for arm in entry.ratio_free_arms)]
    copied = []
    for f in found + ([stamps[0]] if found and stamps[0].is_file() else []):
        if not (target / f.name).exists():
            with atomic_path(target / f.name) as tmp:  # whole or not at all, even if the sweep is stopped here
                shutil.copy2(f, tmp)
            copied.append(f.name)
    return [n for n in copied if n != provenance.DATA_STAMP]


def run_job(job: Job) -> str:
    """Run one job (its threads pinned, its lines prefixed); the executed notebook's path."""
    from . import provenance, runs

    if job.threads is not None:
        pin_threads(job.threads)
    out_dir = Path(job.out_dir) if job.out_dir else provenance.EXECUTED
    records = Path(job.records_dir) if job.records_dir else provenance.RECORDS
    with _prefixed(job.label):
        started = time.time()
        print(f"{job.chapter}: started" + (f" ({job.threads} thread(s))" if job.threads else ""), flush=True)
        path = runs.run_chapter(job.chapter, dict(job.params), force=job.force, out_dir=out_dir,
                               progress=job.progress, records_dir=records)
        print(f"{job.chapter}: done in {(time.time() - started) / 60:.1f} min -> {path}", flush=True)
    return str(path)


def launch(jobs: list[Job], n_jobs: int | None = None, launcher: str = "local",
           folder: str | os.PathLike | None = None) -> list[str]:
    """Run ``jobs``, ``n_jobs`` at once (default: :func:`default_jobs`); their notebooks' paths, in order.

    Args:
        jobs: the runs; each carries its own thread count.
        n_jobs: how many run at the same time (local pool, or the SLURM array's parallelism).
        launcher: one of :data:`LAUNCHERS`.
        folder: submitit's folder for its logs and pickles (default ``results/sweeps/submitit``).
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    n_jobs = default_jobs(len(jobs)) if n_jobs is None else n_jobs
    if n_jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {n_jobs}")
    if not jobs:
        return []
    if launcher == "slurm" and shutil.which("sbatch") is None:  # before submitit, whose error is a traceback
        raise ValueError("launcher slurm needs SLURM, and this machine has no sbatch; use --launcher local (or "
                         "submitit-local to try the SLURM path here)")
    if launcher != "local":
        return _submitit(jobs, n_jobs, launcher, folder)
    if n_jobs == 1:
        return [run_job(job) for job in jobs]
    return _pool(jobs, n_jobs)


def _pool(jobs: list[Job], n_jobs: int) -> list[str]:
    """A local process pool; on the first failure (or Ctrl-C) every other job is ended, kernels included."""
    pool = ProcessPoolExecutor(max_workers=n_jobs, mp_context=get_context("spawn"), initializer=_quiet_worker)
    futures = [pool.submit(run_job, job) for job in jobs]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [(job, f) for job, f in zip(jobs, futures) if f in done and f.exception() is not None]
        if failed:
            job, f = failed[0]
            if isinstance(f.exception(), BrokenProcessPool):  # killed from outside (out of memory, say)
                # the pool breaks every job it was running, so the one killed cannot be told apart
                lost = [j.label or j.chapter for j, g in zip(jobs, futures) if g.exception() is not None]
                raise JobDied(f"a job of {job.chapter} died: one of its worker processes was killed from outside "
                              f"(out of memory, or a signal); the jobs it was running then ({', '.join(lost)}) "
                              "recorded nothing, and the others were stopped") from None
            raise f.exception()
        return [f.result() for f in futures]
    except BaseException:
        end_processes([p.pid for p in (pool._processes or {}).values()])  # the workers the pool started
        _clean_after(jobs)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class JobDied(RuntimeError):
    """A job's worker process was killed from outside; the message names the job."""


def _quiet_worker() -> None:
    """A pool worker leaves Ctrl-C to the parent (which ends every job, kernels included): an idle worker
    then prints no KeyboardInterrupt traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def end_processes(pids: list[int]) -> None:
    """Kill these processes and every process they started (a worker and its chapter's kernel), and
    wait until they are gone."""
    import psutil

    family = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            worker = psutil.Process(pid)
            family += [*worker.children(recursive=True), worker]
    for p in family:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(family, timeout=10)


def _clean_after(jobs: list[Job]) -> None:
    """Remove the working folders and temporary files that ended jobs left (their writers are gone)."""
    from . import provenance
    from .files import clean_stale

    for job in jobs:
        for folder in (job.out_dir or provenance.EXECUTED, job.records_dir or provenance.RECORDS):
            clean_stale(folder)


def _submitit(jobs: list[Job], n_jobs: int, launcher: str, folder) -> list[str]:
    """The same jobs as a submitit job array: SLURM, or submitit's local executor."""
    import submitit

    from . import provenance

    folder = Path(folder) if folder else provenance.ROOT / "results" / "sweeps" / "submitit"
    cluster = "slurm" if launcher == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    threads = max(job.threads or 1 for job in jobs)
    executor.update_parameters(cpus_per_task=threads, timeout_min=24 * 60, slurm_array_parallelism=n_jobs)
    submitted = executor.map_array(run_job, jobs)
    try:
        return [job.result() for job in submitted]
    except BaseException:
        for job in submitted:
            with contextlib.suppress(Exception):
                job.cancel(check=False)
        raise
