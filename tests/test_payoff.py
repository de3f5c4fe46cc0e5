"""When MAE pretraining pays (maelib.payoff, maelib.crossover): a branch of the warmup-stable-decay run repeats
a separate run of its budget, the run resumes after a kill, the few-label subset keeps every class, scratch's
budgets reach the MAE arm's compute, and the crossover is read off the gaps as declared."""

import math

import pandas as pd
import pytest
import torch

from maelib import crossover, images, payoff, profiles
from maelib import progress as reports
from maelib.heads import ViTClassifier


@pytest.fixture(scope="module")
def setup():
    p = profiles.resolve("payoff", "smoke", synthetic=True, limit=160, img_size=16, n_classes=4, batch_size=32,
                         precision="fp32")
    data = images.load_data(p)
    return p, data, images.make_mae(p)


@pytest.fixture
def weights_as_score(monkeypatch):
    """Each branch scored by a sum of its weights, not its top-1 on a few images: any step it took
    differently changes it."""
    monkeypatch.setattr(images, "_classification_eval", lambda data, device: lambda model: {
        "val_acc": float(sum(p.double().sum() for p in model.parameters()))})


def trained(setup, budgets, ckpt=None):
    p, data, mae = setup
    torch.manual_seed(0)
    model = ViTClassifier(payoff.arms(mae, p)[payoff.SCRATCH].build(), len(data["names"]))
    plan = payoff.Schedule(tuple(budgets), 1e-3, 1.0, 1, 0.5)
    return payoff.branched(model, data, p, "cpu", plan, ckpt, "test")


def test_a_branch_scores_as_a_separate_run_of_its_budget(setup, weights_as_score):
    together = trained(setup, [2, 4])
    assert together[2] == trained(setup, [2])[2]  # the branch at 2 epochs: a run of 2 epochs
    assert together[4] == trained(setup, [4])[4]  # the trunk goes on as if the branch had never left it


def test_a_killed_branched_run_resumes_to_the_same_scores(setup, tmp_path, monkeypatch, weights_as_score):
    ckpt = tmp_path / "run.pt"
    calls = []

    def kill_at_four(desc, done, total):  # killed in the 4-epoch budget's branch, after the 2-epoch one scored
        calls.append(done)
        if done == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(reports, "report", kill_at_four)
    with pytest.raises(KeyboardInterrupt):
        trained(setup, [2, 4], ckpt)
    assert ckpt.exists()
    calls.clear()
    monkeypatch.setattr(reports, "report", lambda desc, done, total: calls.append(done))
    resumed = trained(setup, [2, 4], ckpt)
    assert calls == [4, 5]  # the trunk's two epochs and the finished branch are not trained again
    assert resumed == trained(setup, [2, 4])


def test_the_warmup_stable_decay_rate():
    rate = [payoff.wsd_rate(s, 1.0, 10, 60, 80) for s in (0, 5, 10, 59, 60, 70, 80)]
    assert rate == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0])
    assert payoff.wsd_rate(10_000, 2.0, 10) == 2.0  # a trunk never decays
    assert payoff.forks([5, 10, 20, 40], 0.2) == {5: 4, 10: 8, 20: 16, 40: 32}
    assert payoff.forks([2], 0.2) == {2: 1}  # at least one epoch of decay


def test_the_few_label_subset_keeps_a_share_of_every_class():
    y = torch.arange(200) % 4
    data = {"train": (torch.arange(200), y), "val": (torch.zeros(3), torch.zeros(3)), "names": list("abcd")}
    part = payoff.label_subset(data, 0.1, seed=3)
    assert torch.bincount(part["train"][1]).tolist() == [5, 5, 5, 5]
    assert torch.equal(part["train"][0], payoff.label_subset(data, 0.1, seed=3)["train"][0])  # both arms: one draw
    assert not torch.equal(part["train"][0], payoff.label_subset(data, 0.1, seed=4)["train"][0])
    assert sorted(payoff.label_subset(data, 0.001, seed=0)["train"][1].tolist()) == [0, 1, 2, 3]  # one a class at least
    assert payoff.label_subset(data, 1.0, seed=0) is data
    with pytest.raises(ValueError, match="few_labels"):
        payoff.label_subset(data, 0.0, seed=0)


def test_a_few_label_subset_smaller_than_a_batch_is_refused_before_any_compute():
    p = profiles.resolve("payoff", "smoke", limit=200, few_labels=0.1, batch_size=64)
    with pytest.raises(ValueError, match=r"few_labels 0.1 leaves 20 .*batch_size 64"):
        payoff.preflight(p)
    p = profiles.resolve("payoff", "quick", few_labels=0.01)  # no limit: 500 images a class, 5 of each of 20 kept
    with pytest.raises(ValueError, match=r"few_labels 0.01 leaves 100 .*batch_size 128"):
        payoff.preflight(p)
    payoff.preflight(profiles.resolve("payoff", "quick"))  # a tenth: 1,000 images, seven batches
    with pytest.raises(ValueError, match="epochs must be at least two budgets in increasing order"):
        profiles.resolve("payoff", "smoke", epochs=[4, 2])


def test_scratch_trains_on_until_its_compute_reaches_the_mae_arms():
    assert payoff.scratch_budgets([5, 10, 20, 40], 1.0, 53.5) == [5, 10, 20, 40, 54]  # not 80: no further than needed
    assert payoff.scratch_budgets([5, 10], 1.0, 10) == [5, 10]
    assert payoff.scratch_budgets([5, 10], 2.0, 70) == [5, 10, 20, 35]  # doubling, then what reaches 70


def test_the_crossing_is_where_the_gap_turns_positive_for_good():
    assert crossover.crossing([1, 2, 4], [0.5, 1, 2]) == 1  # ahead from the cheapest budget
    assert crossover.crossing([1, 4], [-1, 1]) == pytest.approx(2.0)  # halfway in log FLOPs
    assert crossover.crossing([1, 2, 4, 8], [1, -1, -1, 3]) == pytest.approx(4 * 2 ** 0.25)  # after the last dip
    assert crossover.crossing([1, 2, 4], [1, 2, -0.5]) is None
    assert crossover.crossing([], []) is None


def points(mae_top1, scratch_top1, seeds=(0, 1, 2), pre=30.0):
    """Fake points: scratch at 10..80 FLOPs, the MAE arm at pre + 10..40 (one label fraction)."""
    rows = []
    for s in seeds:
        for e, t in zip((10, 20, 40, 80), scratch_top1):
            rows.append({"seed": s, "arm": payoff.SCRATCH, "fraction": 1.0, "epochs": e, "flops": float(e),
                         "top1": t + 0.1 * s})
        for e, t in zip((10, 20, 40), mae_top1):
            rows.append({"seed": s, "arm": payoff.MAE_ARM, "fraction": 1.0, "epochs": e, "flops": pre + e,
                         "top1": t + 0.1 * s})
    return pd.DataFrame(rows)


def test_gaps_read_scratch_at_the_mae_points_compute_and_never_extrapolate():
    g = crossover.gaps(points([50, 60, 70], [40, 50, 60, 70], pre=50.0))
    assert sorted(g["epochs"].unique()) == [10, 20]  # the 40-epoch MAE point (90 FLOPs) lies past scratch's 80
    one = g[(g["seed"] == 0) & (g["epochs"] == 10)].iloc[0]  # 60 FLOPs: between scratch's 40 (60%) and 80 (70%)
    expected = 60 + 10 * math.log(60 / 40) / math.log(2)
    assert one["flops"] == 60 and one["scratch"] == pytest.approx(expected)
    assert one["gap"] == pytest.approx(50 - expected)


def test_the_crossover_over_seeds_and_the_sentence_that_says_it():
    cross = crossover.crossovers(crossover.gaps(points([50, 70, 90], [40, 50, 60, 70])))[1.0]
    assert cross["flops"] is not None and cross["first"] < cross["flops"] < cross["last"]
    assert cross["seeds"] == 3 and cross["share"] == 1.0 and cross["low"] <= cross["flops"] <= cross["high"]
    assert "from about" in crossover.sentence({1.0: cross})
    ahead = crossover.crossovers(crossover.gaps(points([70, 80, 90], [40, 50, 60, 70])))[1.0]
    assert ahead["flops"] == ahead["first"] and ahead["share_first"] == 1.0
    assert "already at the MAE arm's cheapest budget" in crossover.sentence({1.0: ahead})
    never = crossover.crossovers(crossover.gaps(points([40, 45, 50], [40, 50, 60, 70])))[1.0]
    assert never["flops"] is None and not never["ahead"]
    assert "at no compute in the range both arms reach" in crossover.sentence({1.0: never})
    assert "scratch at least level throughout" in crossover.sentence({1.0: never})


def test_the_pooled_points_are_the_newest_code_and_setting_and_the_newest_run_a_seed():
    def record(seed, code, finished, top1, own=None, lr=4e-3):
        resolved = {"profile": "quick", "seed": seed, "finetune_lr": lr}
        return {"chapter": "payoff", "profile": "quick", "seed": seed, "version": code, "finished": finished,
                "parameters": {"profile": "quick", "seed": seed, **(own or {})}, "resolved": resolved,
                "metrics": {"points": [{"arm": payoff.SCRATCH, "fraction": 1.0, "epochs": 5, "flops": 1.0,
                                        "top1": top1}]}}
    records = [record(0, "old", "2026-01-01", 1.0), record(0, "new", "2026-01-02", 2.0),
               record(0, "new", "2026-01-03", 3.0), record(1, "new", "2026-01-02", 4.0),
               record(2, "new", "2026-01-04", 9.0, own={"few_labels": 0.05})]
    f = crossover.frame(records)
    assert f.set_index("seed")["top1"].to_dict() == {0: 3.0, 1: 4.0}
