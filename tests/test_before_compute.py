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

import pandas as pd
import pytest

from conftest import ROOT, data_folder
from maelib import files, profiles, provenance, runs

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
    """The single `error:` line of a finished CLI call, the only line it printed (no traceback, and no
    announcement of work it then refused)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    return lines[0]


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


def test_a_refused_setting_announces_no_work_first(tmp_path):
    """A run that would choose learning rates says so only once it passed every check."""
    env = {"MAELIB_RECORDS": str(tmp_path / "records"), "MAELIB_CACHE": str(tmp_path / "cache")}
    done = cli("run", "images", "--profile", "smoke", "-p", "patch_size", "32", "--no-book", "--out-dir",
               str(tmp_path / "out"), env=env, timeout=120)
    assert done.returncode == 2 and "hides none of the 1 token" in one_error(done)


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


# ---- 10. a damaged CamVid archive is named


def test_a_truncated_camvid_archive_is_named(tmp_path, isolated_cache):
    from maelib.data import DataCorruptError, seg2d

    src = data_folder("camvid") / "camvid_half.tar.gz"
    (tmp_path / "camvid").mkdir()
    (tmp_path / "camvid" / src.name).write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(DataCorruptError, match=r"camvid_half.tar.gz is damaged \(EOFError.*; copy camvid_half.tar.gz"):
        seg2d.load_camvid(32, tmp_path)


# ---- 3. a syntax error is found before any cell runs


def test_a_syntax_error_names_its_line_and_cell_before_any_cell_runs(tmp_path, monkeypatch, no_compute):
    src = provenance.notebook_of("tabular")
    lines = src.read_text().splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if line.startswith("# %%"))
    lines.insert(last + 1, "x = (1,\n")  # in the last cell: today found only when that cell is reached
    (tmp_path / src.name).write_text("".join(lines))
    monkeypatch.setattr(provenance, "NOTEBOOKS", tmp_path)
    cell = sum(line.startswith("# %%") for line in lines)
    with pytest.raises(ValueError, match=rf"05_tabular.py, line {last + 2} \(cell {cell}\): .*no cell was run"):
        runs.run_chapter("tabular", {"profile": "smoke"}, out_dir=tmp_path / "out", records_dir=None, progress=False)


# ---- 4, 6, 8, 9. settings that pass the ranges but cannot work: the computation is asked first


@pytest.mark.parametrize("chapter, params, message", [
    ("images", {"patch_size": 32}, r"mask_ratio 0.75 hides none of the 1 token of a sample \(img_size 32 in "
                                   r"patch_size 32 patches\)"),
    ("images", {"limit": 1}, r"limit 1 leaves 0 training images beside the held-out tenth, fewer than one batch"),
    ("volumes", {"roi": [16, 16, 16]}, r"mask_ratio 0.75 shows none of the 1 token of a sample \(roi \[16, 16, 16\]"),
    ("volumes", {"roi": [512, 512, 512]}, r"roi \[512, 512, 512\] with batch_size 2 needs at least [\d.]+ GiB for one "
                                          r"training step .* out of memory"),
    ("tabular", {"seed": 99999999999999999999}, r"seed: 99999999999999999999 cannot seed torch, which takes seeds in "
                                                r"\[0, 2\*\*64 - 1\]"),
    ("tabular", {"seed": 2**32}, r"seed: the seeds 4294967296 to 4294967296 must lie in \[0, 2\*\*32 - 1\], the "
                                     r"seeds scikit-learn's imputers take"),
    ("tabular", {"device": "banana"}, r"device must be auto, cpu or a device this machine has .*got 'banana'"),
    ("series", {"device": "cuda"} , r"device must be auto, cpu or a device this machine has .*got 'cuda'"),
])
def test_a_setting_that_cannot_work_is_refused_before_compute(tmp_path, no_compute, chapter, params, message):
    import torch

    if params.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=message):
        runs.run_chapter(chapter, {"profile": "smoke", **params}, out_dir=tmp_path, records_dir=None, progress=False)


def test_a_text_file_as_mae_checkpoint_is_refused_before_compute(tmp_path, no_compute):
    from maelib import images

    text = tmp_path / "notes.txt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(ValueError, match=r"notes.txt is not a readable image-MAE checkpoint \(KeyError"):
        images.load_mae(text)
    with pytest.raises(ValueError, match=r"notes.txt is not a readable image-MAE checkpoint"):
        runs.run_chapter("segmentation", {"profile": "smoke", "mae_checkpoint": str(text)}, out_dir=tmp_path / "o",
                         records_dir=None, progress=False)


# ---- 5, 7, 12. lists, types and folders


@pytest.mark.parametrize("chapter, name, value, message", [
    ("images", "lr_grid", [], r"lr_grid must be a list of at least one value, got \[\]"),
    ("series", "mask_ratios", [], r"mask_ratios must be a list of at least one value"),
    ("tabular", "columns", [], r"columns must be a list of at least one value"),
    ("tabular", "seed", True, r"seed must be an integer, got True"),
    ("images", "depth", True, r"depth must be an integer, got True"),
    ("summary", "records_dir", "/no/such/folder", r"records_dir must be an existing folder, got '/no/such/folder'"),
    ("reproduce", "executed_dir", "/no/such/folder", r"executed_dir must be an existing folder"),
])
def test_a_value_that_means_nothing_is_refused(chapter, name, value, message):
    with pytest.raises(ValueError, match=message):
        profiles.resolve(chapter, "smoke", **{name: value})


@pytest.mark.parametrize("chapter", ["masking", "segmentation"])
def test_a_missing_checkpoint_file_is_refused(tmp_path, chapter):
    with pytest.raises(ValueError, match=r"mae_checkpoint must be an existing file( or 'reference')?, got '.*nothere.pt' \(no such"):
        profiles.resolve(chapter, "smoke", mae_checkpoint=str(tmp_path / "nothere.pt"))


def test_one_column_is_a_list_of_one():
    assert profiles.resolve("tabular", "smoke", columns="longitude").columns == ["longitude"]


# ---- 11. records of the wrong shape are set aside, named


def test_a_record_with_wrong_types_is_set_aside_with_its_name(tmp_path):
    from test_summary import record

    from maelib import claim_tables

    good = record("images", 0, 40.0, 30.0)
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "nulls.json").write_text(json.dumps({k: None for k in provenance.RECORD_KEYS}))
    (tmp_path / "list.json").write_text(json.dumps(list(provenance.RECORD_KEYS)))
    with pytest.warns(UserWarning) as caught:
        loaded = provenance.load_records(root=tmp_path)
    assert loaded == [good]
    said = " ".join(str(w.message) for w in caught)
    assert "nulls.json does not follow the schema (its chapter is None, not str)" in said
    assert "list.json does not follow the schema (it holds a list, not an object)" in said
    assert claim_tables.claims_table(loaded).loc["Table 1", "verdict"].startswith("inconclusive")


@pytest.mark.slow
def test_the_summary_page_names_the_records_it_set_aside(tmp_path):
    from test_summary import record

    reg = tmp_path / "registry"
    reg.mkdir()
    (reg / "good.json").write_text(json.dumps(record("images", 0, 40.0, 30.0)))
    (reg / "nulls.json").write_text(json.dumps({k: None for k in provenance.RECORD_KEYS}))
    out = runs.run_chapter("summary", {"profile": "smoke", "records_dir": str(reg)}, force=True,
                           out_dir=tmp_path / "out", progress=False, records_dir=None)
    shown = ["".join(o.get("data", {}).get("text/markdown", "")) for c in json.loads(out.read_text())["cells"]
             for o in c.get("outputs", []) if "scrapbook" not in o.get("metadata", {})]
    box = next(t for t in shown if "Records set aside" in t)
    assert "nulls.json does not follow the schema" in box and "good.json" not in box


# ---- 13. an imputer that fails numerically is named, not printed as a result


def test_a_numerically_failed_imputer_is_marked_in_the_table():
    from maelib import tabular

    metrics = {"mse_numeric": "numeric: MSE", "mse": "all hidden cells: MSE", "category_error": "error (%)"}
    main = pd.DataFrame([{"model": "iterative (scikit-learn)", "seed": 0, "mse_numeric": 9.1e13, "mse": 6.7e13,
                          "category_error": 0.5},
                         {"model": "mean (scikit-learn)", "seed": 0, "mse_numeric": 0.05, "mse": 0.04,
                          "category_error": 0.5}])
    table = tabular.results_table(main, metrics)
    assert list(table.loc["iterative (scikit-learn)"]) == ["failed numerically (MSE 6.70e+13)"] * 3
    assert list(table.loc["mean (scikit-learn)"]) == ["0.0500", "0.0400", "50.0"]
    assert tabular.failed(float("nan")) and tabular.failed(6.7e13) and not tabular.failed(0.04)


@pytest.mark.slow
def test_a_numerically_failed_imputer_is_no_result_anywhere_on_the_page(tmp_path, isolated_cache):
    """At a 99% missing rate the iterative imputer fails numerically: its by-column row, its rank, the
    prose and the record say so instead of giving its numbers."""
    data_folder("california_housing")
    out = runs.run_chapter("tabular", {"profile": "smoke", "missing_rate": 0.99, "rows": 750}, out_dir=tmp_path,
                           records_dir=None, progress=False)
    metrics = json.loads(out.with_suffix(".run.json").read_text())["metrics"]
    assert "iterative (scikit-learn)" in metrics["failed_numerically"]
    cells = json.loads(out.read_text())["cells"]
    texts = ["".join(o.get("data", {}).get("text/markdown", "")) for c in cells for o in c.get("outputs", [])]
    by_column = next(t for t in texts if "table-5-columns" in t)
    rows = [line for line in by_column.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows and all("failed numerically" in row for row in rows)  # every numeric column's row
    glued = {o["metadata"]["scrapbook"]["name"]: "".join(v for k, v in o["data"].items() if k.endswith("text/plain"))
             for c in cells for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
    assert "failed" in glued["iter_note"] and "failed" in glued["iter_mse_text"]
    assert "that gave a result" in glued["n_models"]
