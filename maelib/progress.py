"""Which chapter and phase is running, shown in the terminal, never in the notebook.

The design is a side channel. :func:`maelib.runs.run_chapter` names a progress file in
``$MAELIB_PROGRESS`` before papermill starts the chapter's kernel, which inherits the variable. Inside
the kernel, :func:`maelib.train.fit` calls :func:`report` when a training starts and after each epoch,
and each call adds one JSON line to the file (no variable set: nothing happens). In the parent, a
:class:`Watcher` thread reads the new lines every second and writes to the stderr it started with.
Inside a sweep's job that stream is the job's prefixed one (:mod:`maelib.jobs`), so every line carries
the job's label.

- On a terminal, for a run alone there: one live line, drawn again in place once a second.
- Anywhere else (a CI log, a pipe, runs side by side): one line when the phase changes, else at most
  one every ``$MAELIB_PROGRESS_EVERY`` seconds (default :data:`EVERY_S`).

Nothing is printed inside the kernel, so the executed notebook gains no output. Phases get their names
from the training's description (:func:`phase_of`): pretraining, choosing learning rates, fine-tuning,
training, linear probe. The time left in a training comes from its mean epoch so far. The time left in
the chapter comes from the recorded runs' wall times, which the runner reads (:mod:`maelib.estimates`)
and hands to the :class:`Watcher`: this module reads nothing of the registry.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


ENV = "MAELIB_PROGRESS"  # the progress file a chapter's kernel reports to
EVERY_S = 60.0  # away from a terminal: at most one line this often, besides phase changes
POLL_S = 1.0


def report(desc: str, done: int, total: int) -> None:
    """Kernel side: training ``desc`` has ``done`` of ``total`` epochs behind it. This adds a line to
    the file in ``$MAELIB_PROGRESS``, and does nothing when the variable is unset."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"desc": desc, "done": int(done), "total": int(total), "t": time.time()})
    with open(path, "a") as f:
        f.write(line + "\n")


def phase_of(desc: str) -> str:
    """The phase a training belongs to, from its description (the ``desc`` the recipes give ``fit``)."""
    low = desc.lower()
    if "pretraining" in low or low == "reference mae":
        return "pretraining"
    if low.startswith("tune "):
        return "choosing learning rates"
    if "probe" in low:
        return "linear probe"
    return "fine-tuning" if "fine-tune" in low else "training"


@dataclass
class Training:
    """One training as the reports tell it: epochs done of ``total``, counted since ``first`` (a resumed
    training starts past 0), between the times ``started`` and ``last``."""

    desc: str
    done: int
    total: int
    first: int
    started: float
    last: float

    def left_s(self, now: float) -> float | None:
        """Seconds until the last epoch ends, from the mean epoch so far; None before the first ends."""
        if self.done <= self.first:
            return None
        per_epoch = (self.last - self.started) / (self.done - self.first)
        return max(0.0, per_epoch * (self.total - self.done) - (now - self.last))


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class Watcher:
    """Parent side: follows a progress file and writes what it says to ``stream`` (see the module's
    docstring). ``expected`` is the chapter's expected wall time in seconds (None: unknown); ``clock``
    can be replaced by a test's."""

    def __init__(self, path, chapter: str, stream=None, live: bool | None = None, every: float | None = None,
                 expected: float | None = None, clock=time.time):
        self.path, self.chapter, self.clock = Path(path), chapter, clock
        self.stream = stream or sys.stderr
        self.live = _is_terminal(self.stream) if live is None else live
        self.every = _every_s() if every is None else every
        self.expected, self.begun = expected, clock()
        self.training: Training | None = None
        self.passed: list[Training] = []  # trainings of a new phase that began and ended between two looks
        self.offset, self.news = 0, False
        self.shown_phase, self.shown_at, self.drawn = None, float("-inf"), False
        self._stop, self._thread = threading.Event(), None

    def read(self) -> None:
        """Take in the lines added to the file since the last read (a partly written line waits)."""
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                text = f.read()
        except FileNotFoundError:
            return
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            try:
                self._take(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError):  # not a report: passed over, not shown
                continue

    def _take(self, r: dict) -> None:
        t = self.training
        if t is None or r["desc"] != t.desc or r["done"] < t.done or r["total"] != t.total:  # another training
            if t is not None and not self.live and phase_of(t.desc) not in (self.shown_phase, *self._passed_phases()):
                self.passed.append(t)  # its phase would otherwise never be said
            self.training = Training(r["desc"], r["done"], r["total"], r["done"], r["t"], r["t"])
        else:
            t.done, t.last = r["done"], r["t"]
        self.news = True

    def _passed_phases(self) -> list[str]:
        return [phase_of(t.desc) for t in self.passed]

    def line(self, now: float, t: Training | None = None) -> str | None:
        """What is running now (or the training ``t``), e.g. ``images · pretraining (MAE pretraining): epoch
        2/10, 00:32 left · 1.2 min in, about 3.0 min left in the chapter``; None before the first report."""
        t = t or self.training
        if t is None:
            return None
        phase = phase_of(t.desc)
        what = phase if t.desc.lower() == phase else f"{phase} ({t.desc})"
        left = t.left_s(now)
        epochs = (f"epoch {t.done}/{t.total}, done" if t.done == t.total else f"epoch {t.done}/{t.total}"
                  + (f", {tqdm.format_interval(left)} left" if left is not None else ""))
        return f"{self.chapter} · {what}: {epochs} · {self._in_chapter(now)}"

    def _in_chapter(self, now: float) -> str:
        """``1.2 min in, about 3.0 min left in the chapter`` (the second part where a time is expected)."""
        spent = now - self.begun
        if self.expected is None:
            return f"{minutes(spent)} in"
        if spent < self.expected:
            return f"{minutes(spent)} in, about {minutes(self.expected - spent)} left in the chapter"
        return f"{minutes(spent)} in, past the {minutes(self.expected)} expected"

    def poll(self) -> None:
        """Read the file, then draw the live line, or write a line where one is due."""
        self.read()
        now = self.clock()
        if self.live:  # before the first training (the kernel starting, data loading): the time so far
            text = self.line(now) or f"{self.chapter} · before the first training · {self._in_chapter(now)}"
            self.stream.write(f"\r{text[:_room(self.stream)]}\x1b[K")  # one row: \r returns to its start
            self.stream.flush()
            self.drawn = True
            return
        for t in self.passed:  # phases that came and went since the last look, each said once
            print(self.line(now, t), file=self.stream, flush=True)
            self.shown_phase, self.shown_at = phase_of(t.desc), now
        self.passed.clear()
        text = self.line(now)
        if text is None:
            return
        phase = phase_of(self.training.desc)
        if phase != self.shown_phase or (self.news and now - self.shown_at >= self.every):
            print(text, file=self.stream, flush=True)
            self.shown_phase, self.shown_at, self.news = phase, now, False

    def start(self) -> "Watcher":
        if self.expected is not None:
            print(f"{self.chapter}: about {minutes(self.expected)} by its recorded runs", file=self.stream,
                  flush=True)
        self._thread = threading.Thread(target=self._run, name=f"progress of {self.chapter}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def stop(self) -> None:
        """End the thread after a last look at the file; a live line is ended with a newline, so that
        what follows starts on a line of its own."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _every_s() -> float:
    """``$MAELIB_PROGRESS_EVERY`` in seconds (default :data:`EVERY_S`)."""
    text = os.environ.get("MAELIB_PROGRESS_EVERY", str(EVERY_S))
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"MAELIB_PROGRESS_EVERY must be a number of seconds, got {text!r}") from None


def _room(stream) -> int:
    """How many characters a live line may have: the terminal's width (120 where it cannot be told), less
    a job's prefix and one column, so that the line never wraps."""
    prefix = 0
    while getattr(stream, "stream", None) is not None:  # a job's prefixed stream: the one it wraps
        prefix, stream = prefix + len(getattr(stream, "prefix", "")), stream.stream
    try:
        width = os.get_terminal_size(stream.fileno()).columns or 120  # 0: a terminal that has no size set
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        width = 120
    return max(20, width - prefix - 1)


def _is_terminal(stream) -> bool:
    """Whether ``stream`` ends in a terminal (a job's prefixed stream: whether the one it wraps does)."""
    inner = getattr(stream, "stream", None)
    if inner is not None and inner is not stream:
        return _is_terminal(inner)
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# What the recorded runs say a run costs (the registry, maelib.provenance.RECORDS).
