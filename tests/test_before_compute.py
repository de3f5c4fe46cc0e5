"""Bad inputs fail before the compute, never after it: each case ends in one clear line that names the
parameter or path and why, and nothing is recorded. A run whose computation is replaced by ``no_compute``
shows that the refusal came first."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, data_folder
from maelib import files, profiles, runs

CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def no_compute(monkeypatch):
    """Replace the chapter's execution: a test that reaches it failed to refuse its input first."""
    def boom(*a, **k):
        raise AssertionError("the chapter started computing")

    monkeypatch.setattr(runs, "_execute_notebook", boom)


def cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "maelib", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**CHILD_ENV, **(env or {})}, **kw)


def one_error(done) -> str:
    """The single `error:` line of a finished CLI call that printed no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


# ---- 1. every place a run writes is checked first


@pytest.mark.parametrize("which", ["out_dir", "records_dir", "checkpoint_dir"])
def test_a_destination_that_is_a_file_is_refused_before_compute(tmp_path, no_compute, which):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    where = {"out_dir": tmp_path / "out", "records_dir": tmp_path / "records", which: blocker}
    params = {"profile": "smoke", "checkpoint_dir": str(where["checkpoint_dir"])} if which == "checkpoint_dir" else {}
    with pytest.raises(files.NotWritable, match=re.escape(str(blocker)) + r" is not a folder this run can write in"):
        runs.run_chapter("images", params or {"profile": "smoke"}, out_dir=where["out_dir"],
                         records_dir=where["records_dir"], progress=False)


def test_cli_names_an_unwritable_records_folder_in_one_line(tmp_path):
    (tmp_path / "records").write_text("a file where the registry should be")
    env = {"MAELIB_RECORDS": str(tmp_path / "records"), "MAELIB_CACHE": str(tmp_path / "cache")}
    done = cli("run", "tabular", "--profile", "smoke", "--no-book", "--out-dir", str(tmp_path / "out"), env=env,
               timeout=120)
    assert done.returncode == 2
    assert re.fullmatch(r"error: the run registry \(MAELIB_RECORDS\) \S+ is not a folder this run can write in .*",
                        one_error(done))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def drop_dac(args: list[str]) -> list[str]:
    """``args`` run without the capability that lets root write in read-only folders."""
    return ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", 'exec "$@"', "sh", *args]


@pytest.mark.skipif(os.geteuid() == 0 and not os.path.exists("/usr/sbin/capsh"), reason="root without capsh")
@pytest.mark.parametrize("what", ["--out-dir", "MAELIB_RECORDS", "MAELIB_CACHE"])
def test_a_read_only_destination_is_one_error_line(tmp_path, what):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    tmp_path.chmod(0o755)
    paths = {"--out-dir": tmp_path / "out", "MAELIB_RECORDS": tmp_path / "records", "MAELIB_CACHE": tmp_path / "c"}
    paths[what] = folder
    env = {**CHILD_ENV, "MAELIB_RECORDS": str(paths["MAELIB_RECORDS"]), "MAELIB_CACHE": str(paths["MAELIB_CACHE"])}
    args = [sys.executable, "-m", "maelib", "run", "tabular", "--profile", "smoke", "--no-book", "--out-dir",
            str(paths["--out-dir"])]
    done = subprocess.run(drop_dac(args) if os.geteuid() == 0 else args, capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert done.returncode == 2 and str(folder) in one_error(done) and "PermissionError" in done.stderr


# ---- 2. a Ctrl-C prints `interrupted`, nothing else


def ctrl_c(args: list[str], after: float, env: dict) -> tuple[int, str]:
    """Start ``python -m maelib *args`` as a terminal would and press Ctrl-C after ``after`` seconds: the
    signal goes to the whole foreground process group. Returns (exit status, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "maelib", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(after)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def only_interrupted(err: str) -> bool:
    """Nothing but progress bars and the kernel's start-up warning before `interrupted`, the last line."""
    lines = [line for line in re.split(r"[\r\n]+", err) if line.strip() and not line.startswith("Executing:")]
    return lines[-1:] == ["interrupted"] and not any("Error" in line or "Traceback" in line for line in lines)


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_during_training_prints_only_interrupted(tmp_path):
    data_folder("ETT")
    env = {**CHILD_ENV, "MAELIB_CACHE": str(tmp_path / "cache"), "MAELIB_RECORDS": str(tmp_path / "records")}
    code, err = ctrl_c(["run", "series", "--profile", "quick", "--no-book", "--out-dir", str(tmp_path / "out")], 20,
                       env)
    assert code == 130 and only_interrupted(err), err
    assert not (tmp_path / "records").exists() or not list((tmp_path / "records").glob("*.json"))


@pytest.mark.slow
def test_ctrl_c_while_the_library_loads_prints_only_interrupted(tmp_path):
    env = {**CHILD_ENV, "MAELIB_CACHE": str(tmp_path / "cache"), "MAELIB_RECORDS": str(tmp_path / "records")}
    for after in (0.3, 0.45, 0.6, 0.75, 0.9, 1.2):
        code, err = ctrl_c(["run", "series", "--profile", "smoke", "--no-book", "--out-dir", str(tmp_path / "out")],
                           after, env)
        assert (code, err.strip()) == (130, "interrupted"), f"Ctrl-C after {after} s: exit {code}\n{err}"
