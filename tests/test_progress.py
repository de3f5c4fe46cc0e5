"""What a run shows in the terminal (maelib.progress): the chapter, its phase, epochs and the time left,
throttled away from a terminal, prefixed inside a sweep's job, never in the notebook; what choosing the
learning rates again costs, said before a run; no kernel warning about TCP."""

import io
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT, data_folder
from maelib import estimates, images, jobs, profiles, progress, provenance, runs, tuning
from maelib.data import TensorLoader
from maelib.train import TrainConfig, fit

TINY = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
x = 1

# %%
from myst_nb import glue
glue("params", {"x": x}, display=False)
'''


def test_a_chapters_kernel_prints_no_warning_about_tcp(tmp_path, capfd):
    """The kernel talks over IPC: a TCP kernel warns on its stderr (the run's) that it is unencrypted."""
    src = tmp_path / "01_tiny.py"
    src.write_text(TINY)
    values = runs._execute_notebook(src, {"x": 2}, tmp_path / "01_tiny.ipynb", False)
    assert values["params"] == {"x": 2}
    err = capfd.readouterr().err
    assert "TCP" not in err and "WARNING" not in err, err


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def reporter(path, clock):
    """``progress.report`` at the fake clock's time."""
    def report(desc, done, total):
        with open(path, "a") as f:
            f.write(json.dumps({"desc": desc, "done": done, "total": total, "t": clock()}) + "\n")
    return report


@pytest.mark.parametrize("desc, phase", [
    ("MAE pretraining", "pretraining"), ("3D MAE pretraining", "pretraining"),
    ("long-horizon MAE pretraining", "pretraining"), ("tune scratch lr=0.002", "choosing learning rates"),
    ("tune MAE + fine-tune lr=0.001", "choosing learning rates"), ("MAE + fine-tune", "fine-tuning"),
    ("scratch", "training"), ("RNN", "training"), ("linear probe", "linear probe")])
def test_each_training_is_named_by_its_phase(desc, phase):
    assert progress.phase_of(desc) == phase


def test_fit_reports_each_epoch_to_the_file_a_run_names(tmp_path, monkeypatch):
    import torch

    data = TensorLoader((torch.randn(32, 4), torch.randn(32, 1)), 8)
    step = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()  # noqa: E731
    fit(torch.nn.Linear(4, 1), step, data, TrainConfig(epochs=2, desc="quiet"), progress=False)
    assert not list(tmp_path.iterdir())  # no variable: nothing written
    monkeypatch.setenv(progress.ENV, str(tmp_path / "progress.jsonl"))
    fit(torch.nn.Linear(4, 1), step, data, TrainConfig(epochs=3, desc="demo"), progress=False)
    lines = [json.loads(x) for x in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert [(x["desc"], x["done"], x["total"]) for x in lines] == [("demo", k, 3) for k in range(4)]


def test_a_line_names_chapter_phase_epoch_and_the_time_left(tmp_path):
    clock, path = Clock(), tmp_path / "p.jsonl"
    report = reporter(path, clock)
    w = progress.Watcher(path, "images", io.StringIO(), live=False, expected=600.0, clock=clock)
    report("MAE pretraining", 0, 10)
    clock.t += 20
    report("MAE pretraining", 2, 10)  # 10 s an epoch: 8 more take 80 s
    w.read()
    assert w.line(clock()) == ("images · pretraining (MAE pretraining): epoch 2/10, 01:20 left · 0.3 min in, "
                               "about 9.7 min left in the chapter")
    clock.t += 30  # 30 s into the third epoch
    assert "00:50 left" in w.line(clock())


def test_away_from_a_terminal_lines_come_on_phase_changes_and_at_most_every_period(tmp_path):
    clock, path, out = Clock(), tmp_path / "p.jsonl", io.StringIO()
    report = reporter(path, clock)
    w = progress.Watcher(path, "images", out, live=False, every=60, clock=clock)
    for desc, epochs in [("MAE pretraining", 300), ("tune scratch lr=0.001", 100), ("tune scratch lr=0.002", 100),
                         ("scratch", 100)]:
        for done in range(epochs + 1):  # an epoch a second, polled every second
            report(desc, done, epochs)
            w.poll()
            clock.t += 1
    lines = out.getvalue().splitlines()
    phases = [line.split(" · ")[1].split(" (")[0] for line in lines]
    # 600 s: three phases, each named when it begins, and at most one line a minute besides
    assert phases[0] == "pretraining" and len(lines) <= 3 + 600 / 60 + 1, lines
    assert [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]] == [
        "pretraining", "choosing learning rates", "training"]
    assert all(not line.startswith("\r") for line in lines)


def test_on_a_terminal_one_line_is_drawn_in_place(tmp_path):
    clock, path = Clock(), tmp_path / "p.jsonl"
    out = io.StringIO()
    report = reporter(path, clock)
    w = progress.Watcher(path, "volumes", out, live=True, clock=clock)
    w.poll()  # the kernel starting: the time so far
    for done in range(4):
        clock.t += 5
        report("3D MAE pretraining", done, 3)
        w.poll()
    w.stop()
    text = out.getvalue()
    assert text.startswith("\rvolumes · before the first training · 0.0 min in\x1b[K\r")
    assert text.count("\r") == 6 and text.count("\n") == 1  # the sixth draw: the last look, when it stops
    assert text.endswith("epoch 3/3, done · 0.3 min in\x1b[K\n")


def test_a_live_line_never_wraps(tmp_path):
    clock, path, sink = Clock(), tmp_path / "p.jsonl", io.StringIO()
    report = reporter(path, clock)
    w = progress.Watcher(path, "images", jobs._Prefixed(sink, "seed 3"), live=True, clock=clock)
    report("tune " + "a very long description " * 10, 0, 2)
    w.poll()
    rows = [row.replace("\x1b[K", "") for row in sink.getvalue().split("\r") if row.strip() != "[seed 3]"]
    assert rows and all(row.startswith("[seed 3] images · choosing") and len(row) < 120 for row in rows), rows


def test_a_jobs_progress_lines_carry_its_label(tmp_path, capsys):
    clock, path = Clock(), tmp_path / "p.jsonl"
    report = reporter(path, clock)
    with jobs._prefixed("seed 3"):  # as a sweep's job runs its chapter: the watcher writes where it began
        w = progress.Watcher(path, "images", every=60, clock=clock)
    assert not w.live  # not a terminal
    report("MAE pretraining", 0, 2)
    w.poll()
    report("tune scratch lr=0.001", 0, 2)
    w.poll()
    assert [line[:30] for line in capsys.readouterr().err.splitlines()] == [
        "[seed 3] images · pretraining ", "[seed 3] images · choosing lea"]


def record(tmp_path, name, *, seed, wall_s, chose_grid=True, code="0" * 64, **changed):
    """A run record of images at the smoke profile's default setting (but for the ``changed`` parameters),
    made by code ``code``."""
    resolved = json.loads(json.dumps(vars(profiles.resolve("images", "smoke", seed=seed)), default=str)) | changed
    grid = {"MAE + fine-tune": {"0.001": 5.0}, "scratch": {"0.001": 4.0}} if chose_grid else {}
    entry = {"chapter": "images", "notebook": "01_images.py", "parameters": {"profile": "smoke", "seed": seed},
             "resolved": resolved, "profile": "smoke", "seed": seed, "device": "cpu",
             "metrics": {"lr": {"MAE + fine-tune": 1e-3, "scratch": 1e-3}, "lr_grid": grid}, "wall_s": wall_s,
             "finished": f"2026-01-0{seed + 1}T00:00:00+00:00", "git_commit": None, "stamp": name, "code": code}
    (tmp_path / f"images-{name}.json").write_text(json.dumps(entry))


def test_the_cost_of_choosing_learning_rates_comes_from_the_records(tmp_path):
    record(tmp_path, "a", seed=0, wall_s=900.0)  # chose: no earlier seed-0 run of its setting and code
    record(tmp_path, "b", seed=1, wall_s=300.0)  # reused its choice
    record(tmp_path, "c", seed=2, wall_s=320.0)
    prec = profiles.resolve("images", "smoke").precision  # what the records were made in
    cost = estimates.tuning_cost("images", "smoke", tmp_path, prec)
    assert cost["cost_s"] == pytest.approx(900 - 310) and cost["reused_s"] == pytest.approx(310)
    assert f"about 9.8 min at the smoke profile in {prec}" in estimates.cost_phrase("images", "smoke", tmp_path, prec)
    other = {"fp32": "bf16", "bf16": "fp32"}[prec]  # runs in another precision tell nothing of this one's time
    assert estimates.tuning_cost("images", "smoke", tmp_path, other) is None
    p = vars(profiles.resolve("images", "smoke"))  # no choice at this code: this run chooses, 310 + 590 s
    assert tuning.will_choose("images", p, tmp_path) and estimates.expected_s("images", p, tmp_path) == pytest.approx(900)
    assert estimates.tuning_cost("images", "quick", tmp_path) is None


def test_a_run_resumed_from_checkpoints_does_not_shorten_the_estimate(tmp_path):
    record(tmp_path, "a", seed=0, wall_s=900.0)
    for i, (seed, wall) in enumerate([(1, 300.0), (2, 320.0), (3, 40.0), (4, 45.0)]):  # 3 and 4 resumed
        record(tmp_path, f"r{i}", seed=seed, wall_s=wall)
    prec = profiles.resolve("images", "smoke").precision
    cost = estimates.tuning_cost("images", "smoke", tmp_path, prec)
    assert cost["reused_s"] == pytest.approx(310) and cost["cost_s"] == pytest.approx(590)


def test_runs_recorded_as_resumed_give_no_seed_its_time(tmp_path):
    """Two resumed runs of 40 and 45 s beside one whole run of 300 s: the median of the three (45 s) would
    pass the half-the-median rule; the ``resumed`` flag the runner records leaves them out."""
    now = provenance.version("images")  # this code's choice is recorded: a run of seed 4 reuses it
    record(tmp_path, "a", seed=0, wall_s=900.0, code=now)
    for i, (seed, wall) in enumerate([(1, 300.0), (2, 40.0), (3, 45.0)]):
        record(tmp_path, f"r{i}", seed=seed, wall_s=wall, code=now)
    def resumed(name):
        path = tmp_path / f"images-{name}.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"resumed": True}))

    resumed("r1")
    resumed("r2")
    prec, p = profiles.resolve("images", "smoke").precision, vars(profiles.resolve("images", "smoke", seed=4))
    assert estimates.tuning_cost("images", "smoke", tmp_path, prec)["reused_s"] == pytest.approx(300)
    assert estimates.expected_s("images", p, tmp_path) == pytest.approx(300)
    longer = {k: 2 * p[k] for k in ("pretrain_epochs", "finetune_epochs", "probe_epochs")}
    record(tmp_path, "late", seed=5, wall_s=40.0, code=now, chose_grid=False, **longer)  # the newest: resumed,
    resumed("late")  # at twice the epochs
    assert estimates.expected_s("images", p, tmp_path) == pytest.approx(300)  # the whole run scaled by its own


def test_a_run_records_whether_it_started_from_checkpoints_already_there(isolated_cache, tmp_path, monkeypatch):
    params = {"profile": "smoke", "seed": 7}
    p = profiles.resolve("images", **params)

    def recorded() -> bool:  # a run of ``params`` (its notebook stood in for), and what its record says
        def execute(chapter, src, params, done_nb, progress, expected):
            done_nb.write_text("{}")
            return {"params": vars(p)}

        monkeypatch.setattr(runs, "_execute", execute)
        runs.run_chapter("images", params, force=True, out_dir=tmp_path / "out", progress=False, records_dir=None)
        return json.loads((tmp_path / "out" / "01_images.run.json").read_text())["resumed"]

    assert not runs.resumes("images", p) and recorded() is False  # no folder yet
    folder = provenance.checkpoint_dir("images", p, {"dataset": "tinyimagenet", "sha256": "ab" * 32})
    assert not runs.resumes("images", p)  # its lock and its data stamp are no checkpoints
    (folder / ".mae_epoch3.pt.123-abc.tmp").write_bytes(b"x")  # a write that never finished
    (folder / "other-data-20261201T000000").mkdir()
    (folder / "other-data-20261201T000000" / "mae_epoch3.pt").write_bytes(b"x")  # set aside: never resumed
    assert not runs.resumes("images", p)
    (folder / "mae_epoch3.pt").write_bytes(b"x")
    assert runs.resumes("images", p) and recorded() is True
    assert not runs.resumes("images", profiles.resolve("images", "smoke", seed=8))  # another run's folder


def test_a_longer_schedule_scales_the_estimate_from_shorter_recorded_runs(tmp_path):
    """2026-12-06: segmentation's schedule went from 30 epochs to 80, and the sweep said 31 min, by the 30-epoch
    runs, for a run of about 55. The recorded times now scale by the epochs of the run to come."""
    p = vars(profiles.resolve("images", "smoke"))
    prec, now = p["precision"], estimates.epochs_of(p)
    assert now == p["pretrain_epochs"] + p["finetune_epochs"] + p["probe_epochs"]
    shorter = {k: p[k] // 2 for k in ("pretrain_epochs", "finetune_epochs", "probe_epochs")}  # the records' schedule
    assert 2 * estimates.epochs_of(shorter) == now  # half as many epochs as this run's
    record(tmp_path, "a", seed=0, wall_s=900.0, **shorter)
    record(tmp_path, "b", seed=1, wall_s=300.0, **shorter)
    cost = estimates.tuning_cost("images", "smoke", tmp_path, prec, p)
    assert cost["scale"] == pytest.approx(2) and cost["cost_s"] == pytest.approx(2 * 600)
    assert "scaled by 2 to this run's epochs" in estimates.cost_phrase("images", "smoke", tmp_path, prec, p)
    assert "scaled" not in estimates.cost_phrase("images", "smoke", tmp_path, prec)  # no run to come: as recorded
    assert estimates.expected_s("images", p, tmp_path) == pytest.approx(1800)  # 2 x (300 + 600)


def test_a_larger_image_scales_the_estimate_by_the_flops_of_a_step(tmp_path):
    """2026-12-07: the hippocampus crop grew fourfold with the schedule, and the sweep, scaling the older runs'
    times by the epochs alone, said 55 min for a seed of about 4 h. The recorded times now scale by the
    FLOPs of one sample's training step too, counted by the chapter's own ``flops_per_sample``."""
    p = vars(profiles.resolve("images", "smoke"))
    prec, smaller = p["precision"], p["img_size"] // 2  # the records: images half as wide, a quarter of the tokens
    record(tmp_path, "a", seed=0, wall_s=900.0, img_size=smaller)
    record(tmp_path, "b", seed=1, wall_s=300.0, img_size=smaller)
    old = {**p, "img_size": smaller}
    want = (images.flops_per_sample(profiles.resolve("images", "smoke"))["supervised"]
            / images.flops_per_sample(profiles.resolve("images", "smoke", img_size=smaller))["supervised"])
    assert want > 3  # four times the pixels and tokens: the step's FLOPs grow about fourfold
    assert estimates.flops_scale("images", old, p) == pytest.approx(want)
    same = {**p, "finetune_epochs": 1, "finetune_lr": 0.5, "mask_ratio": 0.5, "decoder_dim": 8}  # not the step's
    assert estimates.flops_scale("images", p, same) == 1
    assert estimates.flops_scale("tabular", {"hidden": 8}, {"hidden": 16}) == 1  # a chapter that counts none
    assert estimates.flops_scale("images", p, {**p, "img_size": 4096}) == 1  # refused by resolve: nothing built
    cost = estimates.tuning_cost("images", "smoke", tmp_path, prec, p)
    assert cost["scale"] == pytest.approx(want) and cost["cost_s"] == pytest.approx(want * 600)
    assert "to this run's epochs and size" in estimates.cost_phrase("images", "smoke", tmp_path, prec, p)


@pytest.mark.slow
def test_a_smoke_run_shows_its_phases_and_time_left_without_warnings(tmp_path):
    """``python -m maelib run images`` away from a terminal: the cost note, then throttled lines naming
    each phase with the time left in the chapter (by the records), no TCP warning, and a notebook without
    any of it."""
    data_folder("tinyimagenet")
    records = tmp_path / "records"
    records.mkdir()
    record(records, "a", seed=0, wall_s=90.0)  # another code's runs: they tell the cost, 60 s
    record(records, "b", seed=1, wall_s=30.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MAELIB_RECORDS": str(records), "MAELIB_CACHE": str(tmp_path / "c"),
           "MAELIB_PROGRESS_EVERY": "20"}
    done = subprocess.run([sys.executable, "-m", "maelib", "run", "images", "--profile", "smoke", "--no-book",
                           "--out-dir", str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    err = done.stderr
    assert "TCP" not in err and "WARNING" not in err, err
    assert "choosing them takes about 1.0 min at the smoke profile" in err.splitlines()[0]
    shown = [line for line in err.splitlines() if line.startswith("images · ")]
    for phase in ("pretraining", "choosing learning rates", "fine-tuning", "linear probe"):
        assert any(f" · {phase}" in line for line in shown), err
    assert all(re.search(r"min in(, about [\d.]+ min left in the chapter|, past the 1.5 min expected)$", line)
               for line in shown), shown
    wall = json.loads((tmp_path / "out" / "01_images.run.json").read_text())["wall_s"]
    assert len(shown) <= 6 + wall / 20 + 1, shown  # six phase changes, a line each 20 s besides
    nb = nbformat.read(tmp_path / "out" / "01_images.ipynb", as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "images · " not in outputs and "min left in the chapter" not in outputs


def test_a_series_rerun_says_it_chooses_its_long_horizon_learning_rates_again(tmp_path):
    p = vars(profiles.resolve("series", "quick"))
    note = estimates.note("series", p, root=tmp_path)
    # nine next-step models and two long-horizon arms, three rates each: 9 * 2 + 2 * 2 extra trainings
    assert "chooses each network's learning rate" in note and "about 22 extra trainings" in note
    resolved = json.loads(json.dumps({**p, "seed": 0}, default=str))
    entry = {"chapter": "series", "notebook": "02_series.py", "parameters": {"profile": "quick"},
             "resolved": resolved, "profile": "quick", "seed": 0, "device": "cpu", "wall_s": 60.0,
             "metrics": {"lr": {"H96 scratch": 1e-3}, "lr_grid": {"H96 scratch": {"0.001": 0.4}}},
             "finished": "2026-01-01T00:00:00+00:00", "git_commit": None, "stamp": "s", "code": provenance.version("series")}
    (tmp_path / "series-a.json").write_text(json.dumps(entry))
    assert estimates.note("series", p, root=tmp_path) is None  # this setting's choice is reused
    assert estimates.note("series", {**p, "long_mask_ratio": 0.5}, root=tmp_path)  # another setting's is not


def test_a_phase_that_comes_and_goes_between_two_looks_is_still_said(tmp_path, capsys):
    """Smoke trainings take less than the watcher's second: each phase is said once all the same, in order."""
    clock, path = Clock(), tmp_path / "p.jsonl"
    report = reporter(path, clock)
    w = progress.Watcher(path, "images", every=60, clock=clock, live=False)
    for desc in ("MAE pretraining", "tune MAE + fine-tune lr=0.001", "MAE + fine-tune", "scratch", "linear probe"):
        report(desc, 0, 1)
        report(desc, 1, 1)
    w.poll()  # one look after all of them
    said = [line.split(" · ")[1].split(" (")[0].split(":")[0] for line in capsys.readouterr().err.splitlines()]
    assert said == ["pretraining", "choosing learning rates", "fine-tuning", "training", "linear probe"], said
