"""The statistics of a verdict (maelib.stats), on their own: pure functions of per-seed values."""

import numpy as np
import pytest
from scipy import stats as sps

from maelib import stats

PAPER_GAP = 0.0085  # Table 3's mIoU gap, MAE better


def test_sign_flip_p_is_the_exact_permutation_test():
    for n in (2, 5, 8):
        g = np.random.default_rng(n).normal(0.4, 1.0, n)
        exact = sps.permutation_test((g,), np.mean, permutation_type="samples", n_resamples=np.inf,
                                     vectorized=True).pvalue
        assert stats.sign_flip_p(g) == pytest.approx(exact)
    assert stats.sign_flip_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)  # the smallest p five seeds allow


def test_sign_flip_p_enumerates_twenty_seeds():
    g = np.r_[np.ones(19), -1.0]  # one flip of twenty is as extreme per sign pattern: count them
    p = stats.sign_flip_p(g)
    extreme = sum(sps.binom.pmf(k, 20, 0.5) for k in range(21) if abs(20 - 2 * k) >= 18)
    assert p == pytest.approx(extreme)


def test_identical_gaps_are_not_independent_replicates():
    st = stats.paired([0.31] * 5, [0.30] * 5)
    assert st["identical"] and np.isnan(st["p"]) and np.isnan(st["lo"])  # not p = 0
    verdict, why = stats.decide(st, PAPER_GAP)
    assert verdict == "inconclusive" and "not independent replicates" in why


def test_power_matches_a_simulated_t_test():
    rng = np.random.default_rng(0)
    sims = rng.normal(PAPER_GAP, 0.01, size=(20000, 6))
    simulated = np.mean(sps.ttest_1samp(sims, 0.0, axis=1).pvalue < 0.05)
    assert stats.power(PAPER_GAP, 0.01, 6) == pytest.approx(simulated, abs=0.01)
    assert stats.power(PAPER_GAP, 0.01, 12) > stats.power(PAPER_GAP, 0.01, 6)


def test_seeds_for_power_is_the_fewest_that_reach_80_percent():
    n = stats.seeds_for_power(PAPER_GAP, 0.01)
    assert stats.power(PAPER_GAP, 0.01, n) >= 0.8 > stats.power(PAPER_GAP, 0.01, n - 1)
    assert stats.seeds_for_power(PAPER_GAP, 0.1) is None  # more than 20 seeds would be needed
    assert stats.seeds_for_power(PAPER_GAP, 1e-5) == stats.MIN_SEEDS  # never fewer than five


def test_holm_adjusts_a_family_step_down():
    adjusted = stats.holm([0.01, 0.04, float("nan"), 0.03])
    assert adjusted[0] == pytest.approx(0.03) and adjusted[3] == pytest.approx(0.06)
    assert adjusted[1] == pytest.approx(0.06) and np.isnan(adjusted[2])  # monotone; nan stays out
    assert list(stats.holm([0.5, 0.9])) == [1.0, 1.0]  # capped at 1


def _st(gaps):
    return stats.paired(np.asarray(gaps) + 1.0, np.ones(len(gaps)))


def test_an_interval_that_excludes_the_papers_gap_rules_it_out():
    st = _st([0.001, -0.001, 0.0005, -0.0005, 0.0])  # tight around 0, far from 0.0085
    verdict, why = stats.decide(st, PAPER_GAP)
    assert verdict == "the paper's effect ruled out" and "excludes the paper's gap" in why


def test_an_interval_that_holds_both_zero_and_the_papers_gap_is_underpowered():
    st = _st([0.02, -0.015, 0.01, -0.005, 0.012])
    verdict, why = stats.decide(st, PAPER_GAP)
    assert verdict == "inconclusive (underpowered)" and "power at the paper's gap is" in why


def test_a_gap_that_does_not_survive_holm_is_inconclusive():
    st = _st([0.010, 0.012, 0.011, 0.0095, 0.0125])
    assert stats.decide(st, PAPER_GAP)[0] == "holds"
    verdict, why = stats.decide(st, PAPER_GAP, p_family=0.056, family=5)
    assert verdict == "inconclusive" and "Holm" in why and "0.056" in why
    assert stats.decide(st, -PAPER_GAP, p_family=0.01, family=5)[0] == "does not hold"


def test_fewer_than_five_seeds_is_too_few():
    verdict, why = stats.decide(_st([0.01, 0.02, 0.015]), PAPER_GAP)
    assert verdict == "inconclusive (3 seeds)" and "at least 5 seeds" in why


def test_power_far_in_the_tail_is_a_number():
    """A gap many spreads wide (Table 1's 7.9 points with a spread of 1.4) has power ~1, not nan, and
    needs the fewest seeds a verdict allows."""
    assert stats.power(7.9, 1.39, 5) == pytest.approx(1.0, abs=1e-6)
    assert stats.seeds_for_power(7.9, 1.39) == stats.MIN_SEEDS


def test_a_verdict_that_holds_in_direction_says_when_the_papers_magnitude_is_ruled_out():
    """Table 5's case: MAE better as in the paper, but the interval lies far from the paper's gap. The rule
    reads the paper's gap on both sides of 0, not only when the interval includes 0."""
    st = _st([0.0010, 0.0012, 0.0011, 0.0009, 0.0013])  # MAE better, by a tenth of the paper's gap
    verdict, why = stats.decide(st, PAPER_GAP)
    assert verdict == "holds" and "the paper's magnitude (0.0085) is ruled out" in why and "lies below it" in why
    big = _st([0.05, 0.06, 0.055, 0.052, 0.058])
    assert "lies above it" in stats.decide(big, PAPER_GAP)[1]
    near = _st([0.008, 0.009, 0.0085, 0.0082, 0.0088])  # an interval that holds the paper's gap says nothing more
    assert "magnitude" not in stats.decide(near, PAPER_GAP)[1]


def test_paired_items_adds_the_test_sets_noise():
    """Seeds that agree closely on a small, noisy test set: over seeds alone the interval is narrow; drawn
    over seeds and items it widens to take in the test set's own sampling error, around the same gap."""
    rng = np.random.default_rng(0)
    item_effect = rng.normal(0, 1.0, 40)  # each item's own gap: the test set's sampling error
    mae = np.stack([0.5 + item_effect + rng.normal(0, 0.01, 40) for _ in range(6)])
    base = np.full((6, 40), 0.5)
    seeds_only = stats.paired(mae.mean(1), base.mean(1))
    both = stats.paired_items(mae, base)
    assert both["gap"] == pytest.approx(seeds_only["gap"]) and both["items"] == 40 and both["n"] == 6
    assert (both["hi"] - both["lo"]) > 5 * (seeds_only["hi"] - seeds_only["lo"])
    assert both["lo"] < both["gap"] < both["hi"] and both["p_t"] == seeds_only["p"]
    flipped = stats.paired_items(mae, base, higher_is_better=False)
    assert flipped["gap"] == pytest.approx(-both["gap"]) and flipped["lo"] == pytest.approx(-both["hi"], abs=0.05)
    with pytest.raises(ValueError, match="share one"):
        stats.paired_items(mae, base[:, :30])


def test_paired_items_iou_aggregates_before_dividing():
    """mIoU is a ratio of sums over the items, per class, averaged over the classes present."""
    items = np.array([[[[1, 0], [2, 0]], [[3, 2], [4, 2]]]], float)  # 1 seed, 2 items, (inter, union) x 2 classes
    assert stats.item_scores(items, "iou")[0] == pytest.approx(((1 + 3) / (2 + 4) + 2 / 2) / 2)
    no_class_1 = items.copy()
    no_class_1[..., 1] = 0
    assert stats.item_scores(no_class_1, "iou")[0] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="aggregate"):
        stats.item_scores(items, "median")
    sums = np.array([[[4.0, 2], [1.0, 3]]])  # 1 seed, 2 items: (sum of squared errors, hidden cells)
    assert stats.item_scores(sums, "ratio")[0] == pytest.approx(5 / 5)


def test_log_gaps_and_last_fifth_gain():
    assert stats.log_gaps([1.0], [2.0], higher_is_better=False)[0] == pytest.approx(np.log(2))
    assert stats.log_gaps([2.0], [1.0])[0] == pytest.approx(np.log(2))
    rising = [10, 20, 30, 40, 50, 51, 52, 53, 54, 55]  # ten epochs: the last fifth is two
    assert stats.last_fifth_gain(rising) == pytest.approx(2)
    assert stats.last_fifth_gain([0.5, 0.4, 0.3], higher_is_better=False) == pytest.approx(0.1)
    assert np.isnan(stats.last_fifth_gain([0.5]))


def test_paired_items_draws_the_same_items_for_both_arms():
    """Arms a constant apart on items that vary widely: drawn in pairs, every draw gives that constant."""
    rng = np.random.default_rng(1)
    base = rng.normal(0, 5, (5, 50))
    base += rng.normal(0, 0.01, (5, 1))  # seeds not identical
    st = stats.paired_items(base + 0.1, base)
    assert st["lo"] == pytest.approx(0.1, abs=0.02) and st["hi"] == pytest.approx(0.1, abs=0.02)


def test_best_ratio_finds_a_clear_optimum_and_widens_when_seeds_disagree():
    """A clear peak at 0.5 is found with a narrow interval; seeds so noisy that no ratio stands out give an
    interval over the whole grid; lower is better flips the pick."""
    rng = np.random.default_rng(1)
    grid = (0.1, 0.3, 0.5, 0.7, 0.9)
    clear = {r: list(1 - (r - 0.5) ** 2 + 0.001 * rng.standard_normal(3)) for r in grid}
    out = stats.best_ratio(clear)
    assert out["best"] == 0.5 and out["low"] == out["high"] == 0.5 and out["share"][0.5] == 1.0
    noisy = {r: list(rng.standard_normal(3)) for r in grid}
    wide = stats.best_ratio(noisy)
    assert wide["high"] - wide["low"] >= 0.4
    assert stats.best_ratio(clear, higher_is_better=False)["best"] in (0.1, 0.9)
    with pytest.raises(ValueError, match="two seeds"):
        stats.best_ratio({0.1: [1.0], 0.5: [2.0, 3.0]})


def test_lower_best_says_holds_ruled_out_or_undecided():
    low, high = np.full(100, 0.25), np.full(100, 0.75)
    assert stats.lower_best(low, high) == ("holds", 1.0)
    assert stats.lower_best(high, low) == ("ruled out", 0.0)
    assert stats.lower_best(low, low)[0] == "undecided"
