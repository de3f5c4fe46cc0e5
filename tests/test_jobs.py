"""Runs side by side (maelib.jobs): each job's record equals a lone run's with the same thread count, one
job's failure ends the others with nothing recorded, the same job runs under submitit, and a decoded
dataset is made once by runs that start together."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from conftest import ROOT, data_folder
from maelib import __main__ as cli, provenance
from maelib import jobs, runs

SMOKE = {"profile": "smoke"}


def _without_times(value):
    """A record's metrics without wall-clock times (the only thing two equal runs may differ in)."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k != "wall_s" and not k.endswith("_s")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _records(folder: Path) -> dict[int, dict]:
    return {r["seed"]: r for r in (json.loads(f.read_text()) for f in sorted(Path(folder).glob("*.json")))}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    """A registry holding the seed-0 smoke run of tabular, whose learning rates later seeds reuse: with it,
    a sweep of seeds 1 and 2 runs them side by side (the tuning seed would otherwise go first, alone)."""
    folder = tmp_path_factory.mktemp("tuned")
    env = {**os.environ, "MAELIB_RECORDS": str(folder / "runs"), "MAELIB_CACHE": str(folder / "cache")}
    done = subprocess.run([sys.executable, "-m", "maelib", "run", "tabular", "--profile", "smoke", "--no-book",
                           "--out-dir", str(folder / "out")], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "runs"


def _sweep(tmp: Path, name: str, tuned: Path, *options: str) -> tuple[dict[int, dict], str]:
    """``python -m maelib sweep tabular`` at the smoke profile for seeds 1 and 2, beside the seed-0 run of
    ``tuned``: (records by seed, output)."""
    shutil.copytree(tuned, tmp / name / "runs")
    env = {**os.environ, "MAELIB_RECORDS": str(tmp / name / "runs"), "MAELIB_CACHE": str(tmp / name / "cache")}
    cmd = [sys.executable, "-m", "maelib", "sweep", "tabular", "--profile", "smoke", "--seeds", "1", "2",
           "--out-dir", str(tmp / name / "out"), *options]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return _records(tmp / name / "runs"), done.stdout + done.stderr


@pytest.fixture(scope="module")
def lone(tmp_path_factory, tuned):
    """Seeds 1 and 2 run one after the other, one thread each."""
    return _sweep(tmp_path_factory.mktemp("lone"), "lone", tuned, "--jobs", "1", "--threads", "1")[0]


@pytest.mark.slow
def test_two_jobs_record_exactly_what_lone_runs_record(lone, tuned, tmp_path):
    side, out = _sweep(tmp_path, "side", tuned, "--jobs", "2")  # two jobs on two cores: one thread each
    assert sorted(side) == sorted(lone) == [0, 1, 2]  # seed 0: the tuning run both reuse
    assert "chooses the learning rates first" not in out  # the seeds ran side by side
    for seed in (1, 2):  # each job's progress lines carry its label
        assert any(line.startswith(f"[seed {seed}] tabular · training (") for line in out.splitlines()), out
    for seed in (1, 2):
        assert side[seed]["threads"] == lone[seed]["threads"] == 1
        assert _without_times(side[seed]["metrics"]) == _without_times(lone[seed]["metrics"])
        assert f"[seed {seed}] tabular: started" in out and f"[seed {seed}] tabular: done" in out
    assert _without_times(side[1]["metrics"]) != _without_times(side[2]["metrics"])  # the seeds differ


def test_a_resumed_sweep_leaves_out_the_seeds_it_already_recorded(tuned, tmp_path):
    """A sweep run again after an interruption does not rerun a finished seed from its checkpoints and
    record it twice (with the rerun's minutes as its time); --force does."""
    shutil.copytree(tuned, tmp_path / "runs")
    env = {**os.environ, "MAELIB_RECORDS": str(tmp_path / "runs"), "MAELIB_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "maelib", "sweep", "tabular", "--profile", "smoke", "--seeds", "0",
           "--out-dir", str(tmp_path / "out")]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "seed 0: already recorded at this code version" in done.stdout
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1 and not (tmp_path / "out").exists()
    forced = subprocess.run(cmd + ["--force"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2 and "already recorded" not in forced.stdout


def test_a_resumed_published_sweep_still_commits_the_page_of_a_seed_recorded_before(tuned, tmp_path, monkeypatch):
    """An interrupted published sweep never reached its end, where the tuning seed's run becomes the page the
    book shows: run again, it leaves that seed out but still commits its page, and only that run's page."""
    shutil.copytree(tuned, tmp_path / "runs")
    [record] = [json.loads(f.read_text()) for f in (tmp_path / "runs").glob("*.json")]
    monkeypatch.setattr(provenance, "PUBLISHED", tmp_path / "runs")
    monkeypatch.setattr(jobs, "launch", lambda todo, *a, **k: [] if not todo else pytest.fail(f"ran {todo}"))
    committed, real, page = tmp_path / "committed", cli._commit_shown, tmp_path / "out" / "tabular-0-default"
    monkeypatch.setattr(cli, "_commit_shown", lambda chapter, done: real(chapter, done, committed))
    page.mkdir(parents=True)
    for finished in ("2026-12-01T00:00:00+00:00", record["finished"]):  # another run's page, then this run's
        (page / "05_tabular.ipynb").write_text("{}")
        (page / "05_tabular.run.json").write_text(json.dumps({**record, "finished": finished}))
        assert cli.main(["sweep", "tabular", "--profile", "smoke", "--seeds", "0", "--publish",
                         "--out-dir", str(tmp_path / "out")]) == 0
        shown = committed / "smoke" / "05_tabular.run.json"
        assert shown.exists() == (finished == record["finished"])


def test_only_a_record_of_the_same_seed_setting_version_and_data_leaves_a_job_out(tuned, tmp_path):
    [record] = [json.loads(f.read_text()) for f in tuned.glob("*.json")]
    job = lambda seed, **extra: jobs.Job("tabular", {**SMOKE, "seed": seed, **extra}, label=f"seed {seed}")
    todo = [job(0), job(1), job(0, epochs=3), job(0, seeds=2), job(0, data_dir=str(tmp_path))]
    assert cli._not_recorded("tabular", todo, tuned)[0] == todo[1:]  # another seed, setting, seed count, data
    (tmp_path / "old.json").write_text(json.dumps({**record, "version": "0" * 64}))
    assert cli._not_recorded("tabular", todo, tmp_path)[0] == todo  # another code version: to run
    (tmp_path / "old.json").write_text(json.dumps(record))
    newer = {**record, "seed": 1, "finished": "2099-01-01T00:00:00+00:00", "data": {"dataset": "x", "sha256": "f" * 64}}
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    left = cli._not_recorded("tabular", todo, tmp_path)[0]
    assert left == todo[:1] + todo[2:]  # seed 0 ran on data the setting no longer reads; seed 1 on today's



@pytest.mark.slow
def test_submitit_runs_the_same_job_function(lone, tuned, tmp_path):
    shutil.copytree(tuned, tmp_path / "runs")
    job = jobs.Job("tabular", {**SMOKE, "seed": 1}, out_dir=str(tmp_path / "out"), threads=1,
                   records_dir=str(tmp_path / "runs"))
    with pytest.MonkeyPatch.context() as m:  # the job reads the learning rates from its own registry
        m.setenv("MAELIB_RECORDS", str(tmp_path / "runs"))
        [path] = jobs.launch([job], 1, launcher="submitit-local", folder=tmp_path / "submitit")
    assert Path(path).is_file()
    record = _records(tmp_path / "runs")[1]
    assert record["threads"] == 1
    assert _without_times(record["metrics"]) == _without_times(lone[1]["metrics"])


@pytest.mark.slow
def test_one_failing_job_ends_the_others_and_nothing_is_recorded(tmp_path):
    diverges = jobs.Job("tabular", {**SMOKE, "lr": 1e12}, out_dir=str(tmp_path / "a"), threads=1,
                        records_dir=str(tmp_path / "runs"))
    long = jobs.Job("images", {**SMOKE, "pretrain_epochs": 20000}, out_dir=str(tmp_path / "b"), threads=1,
                    records_dir=str(tmp_path / "runs"))
    before = {p.pid for p in psutil.Process().children(recursive=True)}  # other tests' servers, if any
    started = time.time()
    with pytest.raises(runs.ChapterFailed, match="tabular.*FloatingPointError"):
        jobs.launch([diverges, long], 2)
    assert time.time() - started < 240  # 20,000 smoke epochs take far longer: the long job was ended
    assert list(tmp_path.rglob("*.json")) == [] and list(tmp_path.rglob("*.ipynb")) == []  # no record, no notebook
    time.sleep(0.5)
    assert [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())] == []  # no worker, no kernel left


def test_a_chapter_failure_survives_the_trip_between_processes():
    import pickle

    e = pickle.loads(pickle.dumps(runs.ChapterFailed("tabular", "FloatingPointError", "nan", {"lr": 1e3})))
    assert (e.chapter, e.ename, e.params) == ("tabular", "FloatingPointError", {"lr": 1e3})
    assert "nothing was recorded" in str(e)


def test_pinning_sets_torch_openmp_and_blas(monkeypatch):
    for var in jobs.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    before = torch.get_num_threads()
    try:
        jobs.pin_threads(1)
        assert torch.get_num_threads() == 1
        assert all(os.environ[v] == "1" for v in jobs.THREAD_VARS)
        assert provenance.threads() == 1  # what the record says
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        jobs.pin_threads(0)


def test_each_line_of_a_job_carries_its_label():
    class Sink:
        text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    sink = Sink()
    out = jobs._Prefixed(sink, "seed 3")
    out.write("one\ntwo")
    out.write(" halves\nbar 10%\rbar 20%\n")
    assert sink.text == "[seed 3] one\n[seed 3] two halves\n[seed 3] bar 10%\r[seed 3] bar 20%\n"


def test_jobs_sharing_a_pipe_write_whole_lines():
    """Two jobs' streams on one unbuffered pipe (as under PYTHONUNBUFFERED): every write is whole labelled
    lines, so another process's line can never land inside one; a live row goes out when flushed."""
    writes = []

    class Pipe:
        def write(self, s):
            writes.append(s)

        def flush(self):
            pass

    one, two = jobs._Prefixed(Pipe(), "seed 1"), jobs._Prefixed(Pipe(), "seed 2")
    for i in range(3):
        print(f"tabular: step {i}", file=one, flush=True)
        print("tabular:", "started", file=two)
    two.write("\rlive row")
    assert all(w.endswith(("\n", "\r")) for w in writes)  # the row waits for its flush
    two.flush()
    assert writes[-1] == "[seed 2] live row"
    lines = "".join(writes).replace("\r", "\n").splitlines()
    assert all(line.startswith(("[seed 1] tabular: step", "[seed 2] tabular: started", "[seed 2] live"))
               for line in lines if line != "[seed 2] "), lines
    assert all(w.startswith(("[seed 1] ", "[seed 2] ")) for w in writes), writes


@pytest.mark.parametrize("option", [["--jobs", "0"], ["--threads", "0"]])
def test_job_options_out_of_range_are_refused_before_anything_runs(option, capsys, monkeypatch):
    monkeypatch.setattr(jobs, "launch", lambda *a, **k: pytest.fail("ran"))
    assert cli.main(["sweep", "tabular", "--profile", "smoke", *option]) == 2
    assert f"error: {option[0]} must be >= 1, got 0" in capsys.readouterr().err


def test_the_book_runs_independent_chapters_side_by_side_then_the_readers(monkeypatch):
    calls = []
    monkeypatch.setattr(jobs, "launch", lambda todo, n, **k: calls.append((todo, n)) or [])
    monkeypatch.setattr(cli.book, "build", lambda **k: "index.html")
    monkeypatch.setattr(jobs, "cores", lambda: 2)
    last = {"images": 270.0, "series": 115.0, "segmentation": 132.0, "volumes": 205.0, "tabular": 39.0, "payoff": 90.0}
    monkeypatch.setattr(provenance, "last_wall_s", lambda chapter, profile: last.get(chapter, float("inf")))
    assert cli.main(["book", "--profile", "smoke"]) == 0
    (first, n_first), (then, n_then) = calls
    longest_first = ["images", "volumes", "segmentation", "series", "payoff", "tabular"]
    assert [j.chapter for j in first] == longest_first
    assert n_first == 2 and {j.threads for j in first} == {1}
    assert [j.chapter for j in then] == ["masking", "summary", "reproduce"]
    assert n_then == 1 and {j.threads for j in then} == {2}  # each alone, on every core


def test_default_jobs_balance_the_cores(monkeypatch):
    monkeypatch.setattr(jobs, "cores", lambda: 2)
    assert [jobs.default_jobs(n) for n in (1, 2, 4, 20)] == [1, 2, 2, 2]  # one per core where rounds are full
    assert jobs.default_jobs(5) == 5  # two at a time would leave the fifth alone on one core
    assert jobs.default_jobs(7) == 2  # seven at once exceeds three per core
    assert jobs.threads_per_job(2) == 1 and jobs.threads_per_job(1) == 2 and jobs.threads_per_job(5) == 1


def test_decoded_images_are_made_once_by_runs_that_start_together(isolated_cache, monkeypatch):
    from maelib.data import tinyimagenet

    data_folder("tinyimagenet")
    made = []

    def slow_read(folder, split, wanted):
        made.append(split)
        time.sleep(0.5)  # long enough for the other run to arrive while this one decodes
        return np.zeros((4, 64, 64, 3), np.uint8), np.zeros(4, np.int64)

    monkeypatch.setattr(tinyimagenet, "_read", slow_read)
    threads = [threading.Thread(target=tinyimagenet.load, kwargs={"n_classes": 2}) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(made) == ["train", "val"]  # once per split, not once per run


@pytest.mark.slow
def test_ctrl_c_during_a_two_job_sweep_ends_every_job_with_nothing_recorded(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: the sweep, its workers and their kernels."""
    import signal

    env = {**os.environ, "MAELIB_CACHE": str(tmp_path / "cache"), "MAELIB_RECORDS": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, "-m", "maelib", "sweep", "images", "--profile", "smoke", "--seeds", "1",
                             "2", "--jobs", "2", "--out-dir", str(tmp_path / "out")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    family = []
    deadline = time.time() + 180  # a loaded machine takes a while to import torch in four processes
    while time.time() < deadline and len(family) < 4 and proc.poll() is None:  # two workers, each with its kernel
        time.sleep(1)
        family = psutil.Process(proc.pid).children(recursive=True)
    # seeds 1 and 2, not 0: the tuning seed would run alone first, and the sweep could end before the signal
    assert len(family) >= 4 and proc.poll() is None, f"the two jobs never ran side by side: {family}"
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err  # no idle worker's traceback either
    time.sleep(0.5)
    assert [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert list(tmp_path.rglob("*.json")) == [] and list(tmp_path.rglob("*.ipynb")) == []


def test_a_sweep_lets_the_tuning_seed_choose_first_where_no_choice_is_recorded(monkeypatch):
    from maelib import tuning

    todo = [jobs.Job("images", {**SMOKE, "seed": s}, label=f"seed {s}") for s in (0, 1, 2)]
    monkeypatch.setattr(tuning, "any_recorded", lambda chapter, resolved, root=None, borrow=False: None)
    first, rest = cli._tuning_first("images", todo)
    assert [j.params["seed"] for j in first] == [0] and [j.params["seed"] for j in rest] == [1, 2]
    given = [jobs.Job("images", {**SMOKE, "seed": s, "finetune_lr": 1e-3, "scratch_lr": 1e-3, "matched_lr": 1e-3})
             for s in (0, 1)]  # every arm's rate given: nothing to choose, no seed goes first
    assert cli._tuning_first("images", given) == ([], given)
    monkeypatch.setattr(tuning, "any_recorded", lambda chapter, resolved, root=None, borrow=False: {"lr": {}})
    assert cli._tuning_first("images", todo) == ([], todo)  # a recorded choice
    masking = [jobs.Job("masking", {**SMOKE, "seed": 0})]  # chooses no learning rate
    assert cli._tuning_first("masking", masking) == ([], masking)


def test_slurm_without_slurm_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(jobs.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="launcher slurm needs SLURM, and this machine has no sbatch"):
        jobs.launch([jobs.Job("tabular", SMOKE)], 1, launcher="slurm")


def test_a_worker_killed_from_outside_is_named(tmp_path):
    """A job whose worker the system kills (out of memory, say) ends the sweep with the job's name, not
    with concurrent.futures' BrokenProcessPool."""
    import signal

    long = [jobs.Job("images", {**SMOKE, "seed": s, "pretrain_epochs": 20000}, out_dir=str(tmp_path / str(s)),
                     threads=1, label=f"seed {s}", records_dir=str(tmp_path / "runs")) for s in (1, 2)]

    def kill_a_worker():
        deadline = time.time() + 180
        while time.time() < deadline:
            workers = [p for p in psutil.Process().children() if "spawn" in " ".join(p.cmdline())]
            if len(workers) >= 2 and all(w.children() for w in workers):  # both jobs' kernels started
                workers[0].send_signal(signal.SIGKILL)
                return
            time.sleep(0.5)

    threading.Thread(target=kill_a_worker, daemon=True).start()
    with pytest.raises(jobs.JobDied, match=r"a job of images died: one of its worker processes was killed from "
                                           r"outside .*the jobs it was running then \(seed [12](, seed [12])?\)"):
        jobs.launch(long, 2)
    assert list(tmp_path.rglob("*.json")) == []


def _fake_run_folder(params: dict, names: list[str], data: str = '{"data": "hippocampus:abc"}') -> Path:
    """The checkpoint folder a volumes run of ``params`` trains in, holding empty checkpoints ``names``."""
    from maelib import profiles

    folder = provenance.run_dir("volumes", profiles.resolve("volumes", **params))
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(name.encode())
    (folder / provenance.DATA_STAMP).write_text(data)
    return folder


def test_a_mask_ratio_run_takes_only_the_arms_that_never_see_the_mae_from_the_default_run(isolated_cache):
    from maelib import profiles

    default = {"profile": "smoke", "seed": 3}
    scratch = ["scratch.pt", "scratch,_budget-matched.pt", "tune_scratch_lr=0.008.pt",
               "tune_scratch,_budget-matched_lr=0.004.pt"]
    _fake_run_folder(default, scratch + ["pretrain.pt", "MAE_init.pt", "tune_MAE_init_lr=0.008.pt"])
    ratio = {**default, "mask_ratio": 0.5}
    assert sorted(jobs.reuse_ratio_free("volumes", ratio)) == sorted(scratch)
    target = provenance.run_dir("volumes", profiles.resolve("volumes", **ratio))
    assert sorted(f.name for f in target.iterdir()) == sorted(scratch + [provenance.DATA_STAMP])
    assert (target / "scratch.pt").read_bytes() == b"scratch.pt"
    (target / "scratch.pt").write_bytes(b"trained here")
    assert jobs.reuse_ratio_free("volumes", ratio) == []  # what the run has is never overwritten
    assert (target / "scratch.pt").read_bytes() == b"trained here"
    # nothing for the default ratio itself, another seed (no default run of it here), or a chapter without such arms
    assert jobs.reuse_ratio_free("volumes", {**default, "mask_ratio": 0.75}) == []
    assert jobs.reuse_ratio_free("volumes", {**ratio, "seed": 4}) == []
    assert jobs.reuse_ratio_free("tabular", {"profile": "smoke", "seed": 3, "mask_ratio": 0.5}) == []


def test_a_mask_ratio_run_takes_nothing_trained_on_other_data(isolated_cache):
    default = {"profile": "smoke", "seed": 3}
    _fake_run_folder(default, ["scratch.pt"])
    _fake_run_folder({**default, "mask_ratio": 0.5}, [], data='{"data": "hippocampus:other"}')
    assert jobs.reuse_ratio_free("volumes", {**default, "mask_ratio": 0.5}) == []


def test_a_mask_ratio_run_resuming_the_default_runs_scratch_arms_scores_them_as_training_them_would(
        tmp_path, monkeypatch):
    """The claim behind :func:`maelib.jobs.reuse_ratio_free`: the scratch arms a ratio run resumes from the
    default run's checkpoints score exactly what the ratio run would have trained, and its MAE arm is its own."""
    data_folder("hippocampus")

    def claim(params: dict, cache: str) -> dict:
        monkeypatch.setenv("MAELIB_CACHE", str(tmp_path / cache))
        out = tmp_path / cache / "out"
        copied = jobs.reuse_ratio_free("volumes", params)
        runs.run_chapter("volumes", params, out_dir=out, records_dir=None, progress=False, force=True)
        return {**json.loads((out / "04_volumes.run.json").read_text())["metrics"]["claim"], "copied": copied}

    base = {"profile": "smoke", "seed": 0, "lr": 0.004}  # one rate for every arm: no trials to run
    default = claim(base, "shared")
    resumed = claim({**base, "mask_ratio": 0.25}, "shared")
    fresh = claim({**base, "mask_ratio": 0.25}, "alone")
    assert sorted(resumed["copied"]) == ["scratch,_budget-matched.pt", "scratch.pt"] and fresh["copied"] == []
    assert resumed["baseline"] == fresh["baseline"] == default["baseline"]
    assert resumed["mae"] == fresh["mae"] != default["mae"]  # the MAE arm pretrained at its own ratio
