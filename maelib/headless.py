"""Run a chapter's jupytext source as a plain script, without Jupyter.

For a machine that has torch but no notebook stack (a lent GPU machine, say). A percent-format chapter
is valid Python: its cells run in order in one namespace, the parameters are assigned right after the
parameters cell (where papermill injects them), ``myst_nb.glue`` records each value's text instead of
displaying it, ``IPython.display`` is a no-op when IPython is missing, and figures are closed unshown.
The glued values come back in the form :func:`maelib.runs.glued` reads from an executed notebook, so a
script run writes the same run record as a papermill run (no executed notebook, though).
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import sys
import types
from pathlib import Path

PARAMETERS_CELL = re.compile(r'^# %% tags=\["parameters"\][ \t]*$', re.M)
CELL = re.compile(r"^# %%", re.M)


def with_parameters(source: str, params: dict) -> str:
    """The chapter's source with ``name = value`` lines for ``params`` after its parameters cell."""
    found = PARAMETERS_CELL.search(source)
    if found is None:
        raise ValueError('the chapter has no parameters cell (a line "# %% tags=["parameters"]")')
    following = CELL.search(source, found.end())
    cut = following.start() if following else len(source)
    injected = "".join(f"{name} = {value!r}\n" for name, value in params.items())
    return f"{source[:cut]}# %% injected parameters\n{injected}\n{source[cut:]}"


def _display_stub() -> types.ModuleType:
    """``IPython.display`` for a script: display() does nothing, Markdown/HTML keep their text."""
    mod = types.ModuleType("IPython.display")

    class _Text(str):
        pass

    mod.display = lambda *args, **kwargs: None
    mod.Markdown = mod.HTML = _Text
    return mod


def importable(name: str) -> bool:
    """Whether ``import name`` would find a module (a broken or blocked finder counts as no)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def _script_modules(glued: dict):
    """Swap in a recording ``myst_nb`` (always) and a stub ``IPython.display`` (when IPython is absent)."""
    glue_mod = types.ModuleType("myst_nb")
    glue_mod.glue = lambda name, value, display=True: glued.__setitem__(name, repr(value))
    fakes = {"myst_nb": glue_mod}
    if not importable("IPython"):
        ipython = types.ModuleType("IPython")
        ipython.display = _display_stub()
        # matplotlib looks at any module named IPython: no shell, and a version it leaves alone
        ipython.get_ipython, ipython.version_info = (lambda: None), (9, 0, 0)
        fakes.update({"IPython": ipython, "IPython.display": ipython.display})
    saved = {name: sys.modules.get(name) for name in fakes}
    sys.modules.update(fakes)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def execute(src: Path, params: dict, cwd: Path) -> dict[str, str]:
    """Run the chapter ``src`` with ``params`` in-process; return name -> text of every glued value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    code = compile(with_parameters(Path(src).read_text(), params), str(src), "exec")
    glued: dict[str, str] = {}
    with _script_modules(glued), contextlib.chdir(cwd):
        try:
            exec(code, {"__name__": "__main__", "__file__": str(src)})
        finally:
            plt.close("all")
    return glued
