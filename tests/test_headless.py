"""Chapters run as plain scripts where no notebook stack is installed (a bare GPU machine)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, data_folder
from maelib import headless

SOURCE = textwrap.dedent('''\
    # %% [markdown]
    # A chapter.

    # %% tags=["parameters"]
    ratio = 0.75
    seed = 0

    # %%
    from myst_nb import glue
    glue("results", {"ratio": ratio, "seed": seed}, display=False)
    glue("where", __file__)
    ''')


def test_parameters_are_injected_after_the_parameters_cell():
    text = headless.with_parameters(SOURCE, {"ratio": 0.5, "name": "a'b"})
    assert text.index("ratio = 0.75") < text.index("ratio = 0.5") < text.index("from myst_nb import glue")
    assert "name = \"a'b\"" in text


def test_a_source_without_parameters_cell_is_refused():
    with pytest.raises(ValueError, match="no parameters cell"):
        headless.with_parameters("x = 1\n", {"x": 2})


def test_script_glues_values_as_text_and_restores_modules(tmp_path):
    src = tmp_path / "09_toy.py"
    src.write_text(SOURCE)
    before = sys.modules.get("myst_nb")
    values = headless.execute(src, {"ratio": 0.5}, tmp_path)
    assert values == {"results": repr({"ratio": 0.5, "seed": 0}), "where": repr(str(src))}
    assert sys.modules.get("myst_nb") is before


BLOCKED = ("IPython", "myst_nb", "papermill", "jupytext", "nbformat", "ipykernel", "ipywidgets")
DRIVER = textwrap.dedent(f'''\
    import importlib.abc, sys
    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}")
    sys.meta_path.insert(0, Absent())
    from pathlib import Path
    from maelib import runs
    engine = runs.notebook_engine()
    print("engine", engine)
    record = runs.run_chapter("series", {{"profile": "smoke"}}, out_dir=Path(sys.argv[1]), records_dir=None,
                              engine=engine)
    print("record", record)
    ''')


def test_a_chapter_runs_without_any_notebook_package(tmp_path):
    data_folder("ETT")
    env = {**os.environ, "MAELIB_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "out")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "engine script" in done.stdout
    record = json.loads((tmp_path / "out" / "02_series.run.json").read_text())
    assert record["engine"] == "script" and record["profile"] == "smoke" and record["device"] == "cpu"
    assert set(record["metrics"]["mse"]) >= {"persistence", "LSTM", "patch transformer, MAE-pretrained"}
    assert not list((tmp_path / "out").glob("*.ipynb"))  # a script run leaves no executed notebook


def test_the_prepared_device_session_runs_on_a_cpu(tmp_path):
    """benchmarks/gpu_session.py as a lent machine would run it, at a CPU's size: the benchmark, then two
    chapters at once as scripts, their records packed for the trip back."""
    data_folder("ETT")
    data_folder("california_housing")
    env = {**os.environ, "MAELIB_CACHE": str(tmp_path / "cache"), "MAELIB_RECORDS": str(tmp_path / "records"),
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "benchmarks/gpu_session.py", "run", "--chapters", "series", "tabular", "--jobs", "2",
           "--profile", "smoke",
           "--bench=--config tiny --batch 4 --steps 2 --epochs 2", "--budget-s", "240", "--out", str(tmp_path / "out")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tiny   eager" in (tmp_path / "out" / "bench.txt").read_text()
    import tarfile

    with tarfile.open(tmp_path / "out" / "records.tar") as tar:
        records = [json.loads(tar.extractfile(name).read()) for name in tar.getnames()]
    assert sorted(r["chapter"] for r in records) == ["series", "tabular"]
    assert all(r["engine"] == "script" and r["profile"] == "smoke" for r in records)
    assert "series: ok" in done.stdout and "tabular: ok" in done.stdout and "2 run records" in done.stdout
    log = (tmp_path / "out" / "session.log").read_text()
    assert "maelib run series" in log and "maelib run tabular" in log


def test_session_commands_run_side_by_side_and_stop_at_the_deadline(tmp_path):
    import importlib.util
    import io
    import time

    spec = importlib.util.spec_from_file_location("gpu_session", ROOT / "benchmarks" / "gpu_session.py")
    session = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(session)
    py = sys.executable
    commands = {"quick": [py, "-c", "print('hello')"], "slow": [py, "-c", "import time; time.sleep(60)"],
                "late": [py, "-c", "print('never')"]}
    log = io.StringIO()
    began = time.time()
    result = session.run_many(commands, 1, time.time() + 3, log)
    assert time.time() - began < 20
    assert result["quick"][0] == 0 and result["slow"][0] is None and result["late"][0] == "not started"
    assert "hello" in log.getvalue() and "never" not in log.getvalue()
    assert [session.outcome(result[k][0]) for k in commands] == ["ok", "stopped", "not started"]
