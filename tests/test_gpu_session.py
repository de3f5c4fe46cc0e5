"""benchmarks/gpu_session.py: the prepared GPU calls, rehearsed on this CPU at a CPU's size."""

import json
import os
import subprocess
import sys

from conftest import ROOT, data_folder
from maelib import provenance


def load_session():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_session", ROOT / "benchmarks" / "gpu_session.py")
    session = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(session)
    return session


def test_each_call_carries_its_chapters_data_only(tmp_path):
    """prepare stages the data of a call's chapters and nothing else (wheels are left out here)."""
    data_folder("ETT")
    session = load_session()
    session.prepare(ROOT.parent / "shared" / "data", "b", stage=tmp_path / "stage", wheels=False)
    assert sorted(f.name for f in tmp_path.joinpath("stage").iterdir()) == ["COMMIT", "ETT", "california_housing",
                                                                            "hippocampus"]
    assert tmp_path.joinpath("stage", "COMMIT").read_text().strip() == provenance.git_commit()
    assert session.folder_bytes(tmp_path / "stage") < session.CARRY_LIMIT
    assert set(session.CALLS["a"]) | set(session.CALLS["b"]) == set(session.CHAPTER_ORDER) - {"masking"}


def test_the_prepared_device_session_runs_on_a_cpu(tmp_path):
    """benchmarks/gpu_session.py as a lent machine would run it, at a CPU's size: the benchmark, then two
    chapters at once executed as notebooks, their notebooks and records packed for the trip back."""
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
    assert all(r["engine"] == "papermill" and r["profile"] == "smoke" for r in records)
    assert sorted(f.name for f in (tmp_path / "out" / "executed").iterdir()) == [
        "02_series.ipynb", "02_series.run.json", "05_tabular.ipynb", "05_tabular.run.json"]
    assert "series: ok" in done.stdout and "tabular: ok" in done.stdout and "2 run records" in done.stdout
    log = (tmp_path / "out" / "session.log").read_text()
    assert "maelib run series" in log and "maelib run tabular" in log


def test_session_commands_run_side_by_side_and_stop_at_the_deadline(tmp_path):
    import io
    import time

    session = load_session()
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


def test_seeds_run_as_one_run_or_one_per_seed(tmp_path):
    """Chapters that train several seeds in one run get one command; the others one per seed, the first
    seed's notebook where the book takes it from."""
    session = load_session()
    series = session.chapter_commands("series", [0, 1, 2, 3, 4], "full", tmp_path)
    assert list(series) == ["series"] and series["series"][-6:] == ["-p", "seed", "0", "-p", "seeds", "5"]
    images = session.chapter_commands("images", [0, 1, 2], "full", tmp_path)
    assert list(images) == ["images", "images-seed1", "images-seed2"]
    assert str(tmp_path / "executed") in images["images"] and str(tmp_path / "seeds/images-2") in images["images-seed2"]
