"""The 'Reproduce this book' chapter (notebooks/08_reproduce.py) on a folder of fake run records."""

import json
import re
import shlex

import nbformat
import pytest

from maelib import runs
from maelib.__main__ import _value

ENV_A = {"python": "3.11.7", "torch": "2.14.1", "numpy": "2.4.6"}
ENV_B = {**ENV_A, "numpy": "2.4.5"}


def record(chapter, stem, wall_s, parameters, seed=0, env=None, engine="papermill", commit="0123456789abcdef",
           resolved=None):
    entry = {"chapter": chapter, "notebook": f"{stem}.py", "parameters": {"profile": "quick", **parameters},
             "resolved": {"seed": seed, **(resolved or {})}, "profile": "quick", "seed": seed, "device": "cpu",
             "metrics": {}, "wall_s": wall_s, "finished": "2026-11-26T10:00:00+00:00", "git_commit": commit,
             "stamp": "s", "engine": engine}
    if env is not None:
        entry["environment"] = env
    return entry


@pytest.fixture
def executed(tmp_path):
    """Three chapters' records (two environments, one record from before environments were recorded),
    this chapter's own record, and a damaged one: the last two must not be counted."""
    folder = tmp_path / "executed"
    folder.mkdir()
    records = {
        "02_series": record("series", "02_series", 95.4, {"seed": 0, "split": [0.7, 0.2, 0.1], "dataset": "ETTh1"},
                            env=ENV_A, resolved={"seeds": 3}),
        "05_tabular": record("tabular", "05_tabular", 61.0, {"mask_ratio": 0.5}, env=ENV_B, engine="script"),
        "07_summary": record("summary", "07_summary", 12.0, {}, seed=None),
    }
    del records["07_summary"]["engine"]  # written before records named their engine
    records["07_summary"]["device"] = None
    for stem, entry in records.items():
        (folder / f"{stem}.run.json").write_text(json.dumps(entry))
        nbformat.write(nbformat.v4.new_notebook(), folder / f"{stem}.ipynb")
    (folder / "08_reproduce.run.json").write_text(json.dumps(record("reproduce", "08_reproduce", 9999.0, {})))
    (folder / "03_segmentation.run.json").write_text("{damaged")
    return folder, records


def run(folder, tmp_path):
    out = runs.run_chapter("reproduce", {"profile": "smoke", "executed_dir": str(folder),
                                         "committed_dir": str(tmp_path / "none")}, force=True,
                           out_dir=tmp_path / "out", progress=False, records_dir=None)
    nb = nbformat.read(out, as_version=4)
    return runs.glued(nb), nb


def glued_html(nb, name):
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", o["data"]["application/papermill.record/text/html"]))
    raise KeyError(name)


@pytest.fixture
def ran(executed, tmp_path):
    folder, records = executed
    glued, nb = run(folder, tmp_path)
    return glued, nb, records


@pytest.mark.slow
def test_reproduce_chapter_reads_every_other_record(ran):
    glued, nb, records = ran
    results = glued["results"]
    damaged = "03_segmentation.run.json is damaged"  # the kernel's warning, in the notebook's stderr
    assert any(damaged in o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert results["n_chapters"] == 3  # not its own record, not the damaged one
    chapters = results["chapters"]
    assert list(chapters) == ["series", "tabular", "summary"]
    assert chapters["series"]["wall time (min)"] == round(95.4 / 60, 2)
    assert results["total_wall_min"] == round((95.4 + 61.0 + 12.0) / 60, 2)
    assert chapters["series"]["seeds"] == "0-2" and chapters["summary"]["seeds"] == "none"
    assert chapters["series"]["finished"] == "2026-11-26 10:00 UTC"
    assert chapters["summary"]["engine"] == "not recorded" and chapters["summary"]["device"] == "not recorded"
    # a record without an environment says so; two different environments are shown apart
    assert chapters["summary"]["environment"] == "not recorded"
    assert results["environment_missing"] == ["summary"]
    assert results["n_environments"] == 2
    by_chapter = {tuple(e["chapters"]): e for e in results["environments"].values()}
    assert by_chapter[("series",)]["numpy"] == "2.4.6" and by_chapter[("tabular",)]["numpy"] == "2.4.5"
    assert chapters["series"]["environment"] != chapters["tabular"]["environment"]
    table = glued_html(nb, "chapters")  # what the book shows
    assert "1.59" in table and "not recorded" in table
    assert "2.4.5" in glued_html(nb, "environments")


@pytest.mark.slow
def test_reproduce_commands_give_back_each_records_parameters(ran):
    """Each chapter's command, read back the way `python -m maelib run` reads it, has the record's
    profile, parameters and seed; the sweep starts at the recorded seed; make book names the profile."""
    glued, _, records = ran
    shown = glued["commands"].splitlines()
    lines = glued["commands"].replace(" \\\n    ", " ").splitlines()  # a long command, continued, as one
    assert "make book PROFILE=quick" in lines
    assert lines[1].startswith("git checkout 0123456789abcdef")  # the commit every record names
    shown = [x for x in shown if "executed_dir" not in x]  # not the test's own long temporary folder
    assert max(map(len, shown)) <= 76, max(shown, key=len)  # a line the page's code block shows whole
    for stem, entry in records.items():
        line = next(x for x in lines if x.startswith(f"python -m maelib run {entry['chapter']} "))
        words = shlex.split(line)
        assert words[words.index("--profile") + 1] == "quick"
        given = {words[i + 1]: _value(words[i + 2]) for i, w in enumerate(words) if w == "-p"}
        expected = {k: v for k, v in entry["parameters"].items() if k != "profile"}
        if entry["seed"] is not None:
            expected["seed"] = entry["seed"]
        assert given == expected, line
    assert lines[-1].startswith("python -m maelib run reproduce --profile smoke -p executed_dir")
    assert "# the chapters ran at different commits" not in glued["commands"]  # they share one commit
    sweeps = glued["sweep_commands"].splitlines()
    assert "python -m maelib sweep series --publish --profile quick --seeds {0..8}" in sweeps  # the committed 9
    assert not any(" summary " in s for s in sweeps)  # the summary has no seed


@pytest.mark.slow
def test_reproduce_chapter_on_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    glued, _ = run(tmp_path / "empty", tmp_path)
    results = glued["results"]
    assert results["n_chapters"] == 0 and results["total_wall_min"] == 0 and results["chapters"] == {}
