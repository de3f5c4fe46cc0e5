"""The package's layers (maelib/__init__.py): every module imports only from its own layer or below, and no
two modules import each other, directly or round a longer circle. Imports inside functions count."""

import ast

import pytest

from maelib import LAYERS, provenance

FILES = provenance.module_files()


def imports(name: str) -> set[str]:
    path = FILES[name]
    found = provenance.imported_modules(ast.parse(path.read_text()), name, path.name == "__init__.py")
    return {m for m in found if m != "maelib" and m != name}


def layer(name: str) -> int:
    short = name.removeprefix("maelib.")
    for i, (_, members) in enumerate(LAYERS):
        if short in members or short.split(".")[0] in members:
            return i
    raise AssertionError(f"{name} is in no layer of maelib.LAYERS")


def test_every_module_has_a_layer():
    for name in FILES:
        if name != "maelib":
            layer(name)


@pytest.mark.parametrize("name", sorted(n for n in FILES if n != "maelib"))
def test_no_module_imports_from_a_higher_layer(name):
    up = {m: LAYERS[layer(m)][0] for m in imports(name) if layer(m) > layer(name)}
    assert not up, f"{name} ({LAYERS[layer(name)][0]}) imports from higher layers: {up}"


def test_no_circle():
    graph = {n: imports(n) for n in FILES if n != "maelib"}
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                circle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for n in graph:
        if n not in state:
            visit(n, [n])


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The layer check itself can fail: a core module importing the runner is caught."""
    source = FILES["maelib.masking"].read_text() + "\n\ndef _late():\n    from . import runs\n"
    tree = ast.parse(source)
    found = provenance.imported_modules(tree, "maelib.masking")
    assert "maelib.runs" in found and layer("maelib.runs") > layer("maelib.masking")


def test_every_chapter_is_declared_once_in_the_catalog():
    """The runner, the summary and the GPU session read each chapter from maelib.catalog: every chapter
    of the book is declared, each declared preflight is a function of its recipe, and each claim belongs
    to the chapter that declares it."""
    import importlib

    from maelib import catalog

    assert set(provenance.chapters()) == set(catalog.CHAPTERS)
    for name, c in catalog.CHAPTERS.items():
        if c.preflight:
            module, function = c.preflight.split(":")
            assert callable(getattr(importlib.import_module(f"maelib.{module}"), function)), name
        assert all(claim.chapter == name for claim in c.claims), name


def test_mending_a_claim_splits_no_chapters_seeds():
    """The catalog (claims, preflights, data) sits in the runner's layer, which no chapter's version hashes:
    a chapter that reaches it (through its recorded-runs table) keeps its version when it changes."""
    reached = {m for ch in ("images", "series", "segmentation", "volumes", "tabular")
               for m in provenance.chapter_modules(ch)}
    assert "maelib.catalog" in reached and not provenance.computing("maelib.catalog")


def test_a_profile_default_splits_seeds_by_setting_not_by_version(monkeypatch):
    """The profiles declare parameters: their values reach a record as its resolved parameters, which group
    seeds (tuning.setting), so profiles.py is not hashed into any chapter's version, and a new default still
    keeps the old seeds apart, by setting."""
    from maelib import profiles, tuning

    assert not provenance.computing("maelib.profiles") and provenance.computing("maelib.stats")
    before = tuning.setting({"resolved": vars(profiles.resolve("images", "quick"))})
    monkeypatch.setitem(profiles.PROFILES["images"], "quick", {**profiles.PROFILES["images"]["quick"], "finetune_epochs": 7})
    after = tuning.setting({"resolved": vars(profiles.resolve("images", "quick"))})
    assert before != after


def test_a_new_published_number_or_figure_helper_splits_no_seeds(monkeypatch, tmp_path):
    """The paper's and other papers' numbers and the figures' helpers only show: editing them keeps every
    chapter's version, while an edit of a module that computes (stats) changes it."""
    files = dict(provenance.module_files())
    before = provenance.version("series")
    for name in ("maelib.published", "maelib.viz", "maelib.paper", "maelib.stats"):
        copy = tmp_path / f"{name}.py"
        copy.write_text(files[name].read_text() + "\n# an edit\n")
        monkeypatch.setattr(provenance, "module_files", lambda name=name, copy=copy: {**files, name: copy})
        changed = provenance.version("series") != before
        assert changed == (name == "maelib.stats"), name
