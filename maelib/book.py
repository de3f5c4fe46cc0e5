"""What the book shows, and its build.

Each chapter may have two executions: the local one (``book/executed/<stem>.ipynb``, made by
``python -m maelib run`` or ``make book``) and a committed one: a full-profile one made on a GPU
(``results/executed/full/<stem>.ipynb``, put there by ``python -m maelib device import``), else the
tuning-seed run of the published sweep behind the chapter's verdict at the build's profile
(``results/executed/quick/``, put there by ``python -m maelib sweep --publish``). The book shows the
committed execution, unless the local one is a rerun with parameters of the user's own or a newer
execution at the committed one's profile; a build does not run a chapter whose committed execution is
current (:func:`current_committed`). The chosen notebook is copied into
``book/chapters/`` (what ``_toc.yml`` lists) with one provenance line under its title (profile,
device, date, commit, wall time, seeds, from its run record) and, when the chapter's notebook or maelib
changed since that execution, a visible box that says so. An edit of the notebook's prose alone does
neither: the page shows the execution's outputs under the prose as it is now (:func:`with_current_prose`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import provenance, runs


COMMITTED = provenance.COMMITTED
CHAPTERS = "book/chapters"  # the staged copies the book is built from (generated, ignored by git)
LOCAL_ONLY = {"masking", "summary", "reproduce"}  # always run for the build: they read its other runs and models


class MissingExecutions(FileNotFoundError):
    """Some chapter of the book has never been executed (locally, or committed)."""


@dataclass
class Execution:
    notebook: Path
    record: dict
    origin: str  # "local" or "committed"

    @property
    def own_parameters(self) -> dict:
        """The parameters the run was given beyond the controls (a user's own rerun has some)."""
        return provenance.own_parameters(self.record)


def _execution(folder: Path, stem: str, origin: str) -> Execution | None:
    nb, rec = folder / f"{stem}.ipynb", folder / f"{stem}.run.json"
    record = provenance.read_record(rec) if rec.exists() else None
    return Execution(nb, record, origin) if nb.exists() and record else None


def choose(chapter: str, executed: Path = provenance.EXECUTED, committed: Path = COMMITTED,
           profile: str = "full") -> Execution | None:
    """The execution of ``chapter`` the book shows (see the module's docstring), or None. ``profile`` is
    the build's: a committed full-profile execution comes first, then a committed one at ``profile``."""
    local = _execution(Path(executed), provenance.notebook_of(chapter).stem, "local")
    best = _committed(chapter, committed, profile)
    if local and best and (local.own_parameters or (local.record.get("profile") == best.record.get("profile")
                                                     and local.record["finished"] > best.record["finished"])):
        return local  # a rerun of the user's own, or a newer execution at the committed one's profile
    return best or local


def _committed(chapter: str, committed: Path, profile: str) -> Execution | None:
    """The committed execution of ``chapter``: a full-profile one (a GPU run) where there is one, else
    one at ``profile`` (a sweep's tuning-seed run, committed with its records); None for the chapters
    every build runs."""
    if chapter in LOCAL_ONLY:
        return None
    stem = provenance.notebook_of(chapter).stem
    return next(filter(None, (_execution(Path(committed) / prof, stem, "committed")
                              for prof in dict.fromkeys(("full", profile)))), None)


def current_committed(chapter: str, profile: str, committed: Path = COMMITTED) -> Execution | None:
    """The committed execution the book shows of ``chapter`` when it is current: made with the chapter's
    default parameters by the notebook and code of this checkout (not :func:`is_stale`). A build does not
    run such a chapter again."""
    ex = _committed(chapter, committed, profile)
    return ex if ex and not ex.own_parameters and not is_stale(chapter, ex.record) else None


def _when(record: dict) -> str:
    try:
        return dt.datetime.fromisoformat(record["finished"]).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (KeyError, TypeError, ValueError):
        return "an unknown date"


def provenance_line(ex: Execution) -> str:
    """One line: profile, device, date, commit, wall time and seeds of the execution shown."""
    r = ex.record
    resolved = r.get("resolved") or {}
    seed, n = r.get("seed"), resolved.get("seeds")
    seeds = "" if seed is None else (f", seeds {seed}-{seed + n - 1}" if isinstance(n, int) and n > 1
                                     else f", seed {seed}")
    device = f" on **{r['device']}**" if r.get("device") else ""  # chapters that train nothing record none
    if device and resolved.get("precision"):  # runs made before it existed trained in fp32 and say nothing
        device += f" in **{resolved['precision']}**"
    gpu = str(r.get("device") or "").startswith("cuda")
    where = "run for this build" if ex.origin == "local" else f"committed from a {'GPU' if gpu else 'CPU'} run"
    own = ", ".join(f"{k}={v}" for k, v in ex.own_parameters.items())
    return (f"*Executed at the **{r.get('profile')}** profile{device}, {_when(r)}, commit "
            f"`{(r.get('git_commit') or 'unknown')[:8]}`, {r.get('wall_s', 0) / 60:.1f} min{seeds}"
            + (f", with {own}" if own else "") + f" ({where}).*")


def is_stale(chapter: str, record: dict) -> bool:
    """Whether the chapter's notebook or the maelib code it reaches changed since ``record``'s run
    (records older than the notebook hash: whether anything in its inputs changed). A change of the
    notebook's prose alone (:func:`prose_changed`) leaves it current: the book shows its outputs under the
    prose as it is now."""
    if record.get("notebook_sha"):
        return ((record["notebook_sha"] != provenance.notebook_hash(chapter) and not prose_changed(chapter, record))
                or record.get("code") != provenance.code_hash(chapter))  # the code the chapter reaches
    return record.get("stamp") != runs.stamp(chapter, record.get("parameters", {}))


def prose_changed(chapter: str, record: dict) -> bool:
    """Whether the chapter's notebook differs from the one ``record``'s run executed in its markdown cells
    only: its code cells and the computing code they reach are as they were (the same
    :func:`provenance.version`), so its numbers are what this checkout computes (the display-only modules,
    which lay out its tables and figures, may have changed since, as for any current execution)."""
    return (record.get("notebook_sha") not in (None, provenance.notebook_hash(chapter))
            and record.get("version") == provenance.version(chapter))


def _code_lines(source: str) -> list[str]:
    """A code cell's lines as they ran: trailing spaces and the blank lines at its two ends aside (a blank
    line inside, in a string, may change what it prints)."""
    return [line.rstrip() for line in source.strip("\n").splitlines()]


def with_current_prose(nb, chapter: str):
    """``nb``, an execution of ``chapter``, with the markdown cells of the chapter's notebook as it is now
    and its own code cells, outputs included, in their places (papermill's injected parameters stay after
    the parameters cell). Raises ValueError where the code cells do not pair one to one."""
    import jupytext

    now = jupytext.read(provenance.notebook_of(chapter))
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    ran = [c for c in nb.cells if c.cell_type == "code" and c not in injected]
    code = [c for c in now.cells if c.cell_type == "code"]
    if [_code_lines(c.source) for c in ran] != [_code_lines(c.source) for c in code]:
        raise ValueError(f"the code cells of {chapter!r}'s execution are not its notebook's: run it again")
    tagged = [i for i, c in enumerate(now.cells) if "parameters" in c.metadata.get("tags", [])]
    ran, cells = iter(ran), []
    for i, cell in enumerate(now.cells):
        cells.append(next(ran) if cell.cell_type == "code" else cell)
        if tagged and i == tagged[-1]:  # papermill injects after the last parameters cell
            cells.extend(injected)
    nb.cells = cells
    return nb


def stale_note(chapter: str, ex: Execution) -> str:
    """A warning box when the chapter's notebook or the computing maelib code changed since the execution
    shown, else ""."""
    if not is_stale(chapter, ex.record):
        return ""
    return stale_box(chapter, ex, "The chapter's notebook or the library has changed since, so the current "
                                  "code might give other numbers.")


def stale_box(chapter: str, ex: Execution, why: str) -> str:
    """The warning box of an execution that this checkout's notebook might not reproduce, saying ``why``."""
    commit = (ex.record.get("git_commit") or "unknown")[:8]
    again = f"python -m maelib run {chapter} --profile {ex.record.get('profile')}"
    return (":::{admonition} Made by an earlier version of this chapter\n:class: warning\n"
            f"This page was executed at commit `{commit}` ({_when(ex.record)}). {why.rstrip('.')}. Run it again "
            f"with `{again}`.\n:::")


PROSE_EDITED = " · its prose edited since the run; its code, outputs and numbers as they ran"


def shown(executed: Path = provenance.EXECUTED, committed: Path = COMMITTED, root: Path = provenance.ROOT,
          skip: tuple[str, ...] = ("reproduce",), profile: str = "full") -> dict[str, Execution]:
    """The execution the book shows of each chapter of ``_toc.yml`` (those that have one), in order."""
    out = {}
    for chapter in runs.toc_chapters(root):
        ex = None if chapter in skip else choose(chapter, executed, committed, profile)
        if ex is not None:
            out[chapter] = ex
    return out


def _local_paths(root: Path) -> list[tuple[str, str]]:
    """Where this machine's paths are written in an executed notebook, and what a reader sees instead:
    the repository's root (``/home/me/mae/results/...`` -> ``results/...``), then the home folder (``~``)."""
    pairs = [(f"{Path(root).resolve()}/", ""), (f"{Path(root)}/", "")]
    if Path.home() != Path("/"):
        pairs.append((f"{Path.home()}/", "~/"))
    return list(dict(pairs).items())


def _without_local_paths(text, pairs: list[tuple[str, str]]):
    if isinstance(text, list):
        return [_without_local_paths(t, pairs) for t in text]
    if not isinstance(text, str):
        return text
    for local, shown in pairs:
        text = text.replace(local, shown)
    return text


def _with_header(nb_path: Path, lines: list[str], root: Path = provenance.ROOT, prose_of: str | None = None):
    """The notebook as the book shows it: a markdown cell of ``lines`` right under its title (the first
    cell's first line), the parameters cells' code behind a toggle, no stderr output, and no path of the
    machine that ran it (papermill's temporary input and output paths are dropped; the repository's root
    and the home folder are written relative, in code and outputs alike). With ``prose_of`` (a chapter),
    under the chapter's prose as it is now (:func:`with_current_prose`)."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    if prose_of:
        nb = with_current_prose(nb, prose_of)
    first = nb.cells[0]
    title, _, rest = first.source.partition("\n")
    cells = [nbformat.v4.new_markdown_cell(title), nbformat.v4.new_markdown_cell("\n\n".join(x for x in lines if x))]
    cells[1].metadata["tags"] = ["provenance"]
    if first.cell_type == "markdown" and title.startswith("# ") and rest.strip():
        cells.append(nbformat.v4.new_markdown_cell(rest.strip("\n")))
        nb.cells[:1] = cells
    else:
        nb.cells.insert(1, cells[1])
    pairs = _local_paths(root)
    for key in ("input_path", "output_path"):  # .running-<pid>-<tmp>/<stem>.ipynb on the machine that ran it
        nb.metadata.get("papermill", {}).pop(key, None)
    for cell in nb.cells:
        if cell.cell_type == "code":  # the page drops stderr (tqdm bars, warnings): so does the download
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
            cell.source = _without_local_paths(cell.source, pairs)
            for o in cell.outputs:
                if "text" in o:
                    o.text = _without_local_paths(o.text, pairs)
                # text/plain, text/html, ... and glue's application/papermill.record/text/plain
                for mime in [m for m in o.get("data", {}) if "text/" in m]:
                    o.data[mime] = _without_local_paths(o.data[mime], pairs)
        tags = cell.metadata.get("tags", [])
        kind = next((PARAMETER_PROMPTS[t] for t in ("injected-parameters", "parameters") if t in tags), None)
        if cell.cell_type == "code" and kind:  # folded, under a bar that says what it holds
            cell.metadata["tags"] = [*tags, "hide-input"] if "hide-input" not in tags else tags
            cell.metadata["mystnb"] = {**cell.metadata.get("mystnb", {}), "code_prompt_show": f"Show {kind}",
                                       "code_prompt_hide": f"Hide {kind}"}
    return nb


# what a chapter's folded parameter cells hold, as their bars say it
PARAMETER_PROMPTS = {"parameters": "the chapter's parameters and their defaults",
                     "injected-parameters": "the parameters this run was given"}


def stage(root: Path = provenance.ROOT, executed: Path | None = None, committed: Path | None = None,
          profile: str = "full") -> dict[str, Execution]:
    """Copy the chosen execution of every chapter of ``_toc.yml`` into ``root/book/chapters`` with its
    provenance line (and the stale box where due); returns chapter -> execution."""
    import nbformat

    root = Path(root)
    executed = Path(executed or root / "book" / "executed")
    committed = Path(committed or root / "results" / "executed")
    out = root / CHAPTERS
    out.mkdir(parents=True, exist_ok=True)
    shown = {}
    chosen = {chapter: choose(chapter, executed, committed, profile) for chapter in runs.toc_chapters(root)}
    missing = [chapter for chapter, ex in chosen.items() if ex is None]
    if missing:
        raise MissingExecutions(f"no execution yet of {', '.join(map(repr, missing))} (in {executed} or "
                                f"{committed}/{profile}): `python -m maelib book` runs every chapter, or "
                                f"`python -m maelib run <chapter>` one")
    for chapter, ex in chosen.items():
        source = provenance.notebook_of(chapter)
        shutil.copy2(source, out / source.name)  # the jupytext source, offered for download beside the notebook
        downloads = (f"Download: {{download}}`the executed notebook <{ex.notebook.name}>` · "
                     f"{{download}}`its source (jupytext) <{source.name}>`")
        edited, note = prose_changed(chapter, ex.record), stale_note(chapter, ex)
        try:
            nb = _with_header(ex.notebook, [provenance_line(ex), downloads + (PROSE_EDITED if edited else ""), note],
                              root, prose_of=chapter if edited else None)
        except ValueError as e:  # its cells do not pair with today's notebook: shown as it ran, and said so
            nb = _with_header(ex.notebook, [provenance_line(ex), downloads, stale_box(chapter, ex, str(e))], root)
        with open(out / ex.notebook.name, "w") as f:
            nbformat.write(nb, f)
        shown[chapter] = ex
    return shown


def build(root: Path = provenance.ROOT, warnings_as_errors: bool = True, executed: Path | None = None,
          profile: str = "full") -> Path:
    """Draw the hand-written pages' figures, stage the chapters (:func:`stage`), then ``jupyter-book
    build`` the repository root into ``_build/html``; returns index.html."""
    from .viz import masking_recipe_figure, save_figure

    root = Path(root)
    fig_dir = root / "book" / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    save_figure(masking_recipe_figure(), fig_dir / "masking_recipe.svg")  # vector, at the text width
    shown = stage(root, executed, profile=profile)
    from . import webmodel

    masking = shown.get("masking")
    report = webmodel.stage(root, masking.record.get("metrics", {}).get("checkpoint") if masking else None)
    print("masking page's in-browser model:", "staged" if report["staged"] else f"not staged ({report['reason']})")
    cmd = ["jupyter-book", "build", str(root), "--builder", "html"]
    if warnings_as_errors:
        cmd += ["-W", "-n", "--keep-going"]
    exe = Path(os.sys.executable).parent / "jupyter-book"
    cmd[0] = str(exe) if exe.exists() else cmd[0]
    subprocess.run(cmd, check=True, cwd=root)
    return with_favicon(root / "_build" / "html" / "index.html")


def with_favicon(index: Path) -> Path:
    """The root page jupyter-book writes is a bare redirect: give it the book's icon too, so the tab that
    opens on it shows the icon from the first moment (and the browser asks for no /favicon.ico)."""
    text = index.read_text()
    link = '<link rel="icon" href="_static/favicon.svg" />'
    if link not in text:  # the page is a lone <meta> (no <head>): the parser places a leading <link> in the head
        index.write_text(f"{link}\n{text}")
    return index
