"""The statistics of a verdict: pure functions of the per-seed values of a claim's two arms.

A claim is judged on its paired gaps, one per seed: MAE minus baseline, signed so that a positive gap
means the MAE did better. :func:`paired` gives their mean, its t-interval, the t-test's p and an exact
sign-flip p; :func:`power` the chance that ``n`` seeds detect a given gap with a spread like the observed
one, and :func:`seeds_for_power` how many seeds reach a target power; :func:`holm` adjusts the p values of
a family of claims; :func:`decide` turns all of it into one of the verdicts in :data:`VERDICTS`.

:func:`paired` covers training noise only (seeds: initialisation, masks, crops, batch order): every chapter
scores every seed on one fixed test or validation set, so that set's own sampling error is not in it.
:func:`paired_items` adds it: where a run records each arm's score per test item (an image, a window, a
volume, a frame), a paired bootstrap draws seeds and test items together. :func:`log_gaps` scales a gap as
a ratio, for a claim whose paper gives no scale for its errors.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

LEVEL = 0.95  # the interval's coverage; tests are two-sided at 1 - LEVEL
MIN_SEEDS = 5  # a verdict needs at least this many seeds
MAX_SEEDS = 20  # the most seeds a power calculation asks for
TARGET_POWER = 0.8
VERDICTS = ("holds", "does not hold", "the paper's effect ruled out", "inconclusive")


def gaps(mae, base, higher_is_better: bool = True) -> np.ndarray:
    """(n,) paired gaps, positive where the MAE did better.

    Args:
        mae, base: (n,) the two arms' scores, seed by seed.
        higher_is_better: whether a higher score is better (accuracy) or worse (an error).
    """
    return (1 if higher_is_better else -1) * (np.asarray(mae, float) - np.asarray(base, float))


def _signed_sums(g: np.ndarray) -> np.ndarray:
    """(2**n,) the sum of the (n,) values ``g`` under every choice of signs."""
    sums = np.zeros(1)
    for x in g:
        sums = np.concatenate([sums + x, sums - x])
    return sums


def sign_flip_p(g) -> float:
    """Exact two-sided p of a zero mean gap by sign flips of the (n,) gaps ``g``: under the null every
    gap is as likely negative as positive, so the p is the share of all 2**n sign choices whose sum is at
    least as far from 0 as the observed one. Its smallest possible value is 2 / 2**n (0.0625 at five
    seeds). The two halves' sums are enumerated apart and added as an outer sum (2**20 at 20 seeds)."""
    g = np.asarray(g, float)
    if len(g) < 2 or not np.isfinite(g).all():
        return float("nan")
    half = len(g) // 2
    sums = np.add.outer(_signed_sums(g[:half]), _signed_sums(g[half:]))
    observed = abs(g.sum()) * (1 - 1e-12)  # a flip as extreme as the data counts despite rounding
    return float(np.mean(np.abs(sums) >= observed))


def paired(mae, base, higher_is_better: bool = True, level: float = LEVEL) -> dict:
    """The paired comparison of two arms over seeds.

    Args:
        mae, base, higher_is_better: as in :func:`gaps`.
        level: the interval's coverage.

    Returns:
        {n, gap (mean), sd (of the gaps), lo, hi (the ``level`` t-interval of the mean), p (t-test of a zero
        mean), p_flip (:func:`sign_flip_p`), identical (every seed gave the same gap)}; nan where the seeds
        cannot say (fewer than two, or identical gaps: those are not independent replicates).
    """
    g = gaps(mae, base, higher_is_better)
    n = len(g)
    nan = float("nan")
    out = {"n": n, "gap": float(g.mean()) if n else nan, "sd": float(g.std(ddof=1)) if n > 1 else nan,
           "lo": nan, "hi": nan, "p": nan, "p_flip": nan, "identical": bool(n > 1 and np.ptp(g) == 0)}
    if n < 2 or out["identical"] or not np.isfinite(g).all():
        return out
    test = stats.ttest_1samp(g, 0.0)
    ci = test.confidence_interval(level)
    return {**out, "lo": float(ci.low), "hi": float(ci.high), "p": float(test.pvalue), "p_flip": sign_flip_p(g)}


AGGREGATES = ("mean", "ratio", "iou")  # how a seed's score comes from its per-item values (paired_items)
BOOTSTRAPS = 4000  # draws of paired_items


def item_scores(items: np.ndarray, aggregate: str = "mean") -> np.ndarray:
    """Each seed's score from its per-item values.

    Args:
        items: "mean": (S, N) one value per seed and item (a 0/1 hit, a squared error, a Dice), the score
            their mean; "ratio": (S, N, 2) each item's sum and count (squared errors over its hidden
            cells, and how many), the score (summed sums) / (summed counts); "iou": (S, N, 2, C) each
            item's intersection and union per class, the score the mean over classes of (summed
            intersection) / (summed union), classes never present left out.
        aggregate: one of :data:`AGGREGATES`.

    Returns:
        (S,) the seeds' scores.
    """
    if aggregate == "mean":
        return items.mean(axis=1)
    if aggregate == "ratio":
        return items[:, :, 0].sum(1) / np.clip(items[:, :, 1].sum(1), 1e-12, None)
    if aggregate == "iou":
        inter, union = items[:, :, 0].sum(1), items[:, :, 1].sum(1)  # (S, C)
        present = union > 0
        return np.where(present, inter / np.where(present, union, 1), 0).sum(1) / present.sum(1).clip(min=1)
    raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")


def paired_items(mae_items, base_items, higher_is_better: bool = True, aggregate: str = "mean",
                 level: float = LEVEL, draws: int = BOOTSTRAPS, seed: int = 0) -> dict:
    """:func:`paired` with the test set's sampling error in the interval: a paired bootstrap that draws the
    seeds and the test items with replacement, the same items for both arms, and recomputes the mean gap.

    Args:
        mae_items, base_items: (S, N), (S, N, 2) or (S, N, 2, C) per-seed, per-item values of the two arms
            (:func:`item_scores`), items in the same order in both.
        higher_is_better, level: as in :func:`paired`.
        aggregate: how a seed's score comes from its items (:data:`AGGREGATES`).
        draws, seed: the bootstrap's draws and its random seed (fixed: the same records, the same interval).

    Returns:
        :func:`paired`'s entries from the seeds' scores, with ``lo``, ``hi`` the bootstrap's percentile
        interval and ``p`` its two-sided p (twice the smaller share of draws on either side of 0, at least
        1 / draws), ``p_t`` the t-test's p on seeds alone, and ``items`` (N).
    """
    a, b = np.asarray(mae_items, float), np.asarray(base_items, float)
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"mae_items and base_items must share one (seeds, items, ...) shape, got {a.shape} and "
                         f"{b.shape}")
    out = paired(item_scores(a, aggregate), item_scores(b, aggregate), higher_is_better, level)
    out.update(items=a.shape[1], p_t=out["p"])
    if out["n"] < 2 or out["identical"] or not np.isfinite(out["gap"]):
        return out
    rng = np.random.default_rng(seed)
    sign = 1 if higher_is_better else -1
    boot = np.empty(draws)
    for i in range(draws):
        s, k = rng.integers(0, a.shape[0], a.shape[0]), rng.integers(0, a.shape[1], a.shape[1])
        boot[i] = sign * (item_scores(a[s][:, k], aggregate) - item_scores(b[s][:, k], aggregate)).mean()
    tail = (1 - level) / 2
    lo, hi = np.quantile(boot, [tail, 1 - tail])
    p = min(1.0, max(2 * min((boot <= 0).mean(), (boot >= 0).mean()), 1 / draws))
    return {**out, "lo": float(lo), "hi": float(hi), "p": float(p)}


def log_gaps(mae, base, higher_is_better: bool = True) -> np.ndarray:
    """(n,) gaps as log ratios, positive where the MAE did better: log(base / mae) for an error, log(mae /
    base) for a score. A paper's ratio r of MAE to baseline is the gap -log(r) (errors) on this scale, which
    no rescaling of the data changes."""
    ratio = np.log(np.asarray(mae, float)) - np.log(np.asarray(base, float))
    return ratio if higher_is_better else -ratio


def power(effect: float, sd: float, n: int, level: float = LEVEL) -> float:
    """The chance that a two-sided paired t-test over ``n`` seeds rejects a zero gap (the noncentral t).

    Args:
        effect: the true mean gap.
        sd: the gaps' standard deviation.
        n: the number of seeds.
        level: the test rejects at 1 - ``level``, two-sided.

    Returns:
        The power in [0, 1]; nan when ``n`` < 2 or ``sd`` is not a positive number.
    """
    if n < 2 or not (np.isfinite(sd) and sd > 0 and np.isfinite(effect)):
        return float("nan")
    df = n - 1
    t = stats.t.ppf(1 - (1 - level) / 2, df)
    shift = abs(effect) * math.sqrt(n) / sd
    upper, lower = stats.nct.sf(t, df, shift), stats.nct.cdf(-t, df, shift)
    if not np.isfinite(upper):  # scipy's noncentral t fails far in a tail: the normal limit is exact enough
        upper = stats.norm.sf(t - shift)
    return float(upper + (lower if np.isfinite(lower) else 0.0))  # the far lower tail: ~0


def seeds_for_power(effect: float, sd: float, target: float = TARGET_POWER, least: int = MIN_SEEDS,
                    most: int = MAX_SEEDS) -> int | None:
    """The fewest seeds whose :func:`power` at ``effect`` reaches ``target``.

    Args:
        effect, sd: as in :func:`power`.
        target: the power to reach.
        least, most: the seed counts tried, both included.

    Returns:
        That seed count; None when even ``most`` seeds fall short (or the spread is unknown).
    """
    for n in range(least, most + 1):
        if power(effect, sd, n) >= target:
            return n
    return None


def holm(p) -> np.ndarray:
    """Holm's step-down adjustment of a family of p values (nan entries are not in the family and stay
    nan): the k-th smallest of m is multiplied by m - k + 1, made monotone and capped at 1."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def last_fifth_gain(curve, higher_is_better: bool = True) -> float:
    """How much a (E,) per-epoch ``curve`` still gained over its last fifth of epochs (at least one): the
    last value less the value that many epochs before, positive where it improved. An arm that gains less
    than a stated amount there has finished learning at its schedule; a curve of one epoch gives nan."""
    curve = np.asarray(curve, float)
    if len(curve) < 2:
        return float("nan")
    k = max(1, round(len(curve) / 5))
    return float((1 if higher_is_better else -1) * (curve[-1] - curve[-1 - min(k, len(curve) - 1)]))


def best_ratio(values: dict[float, list[float]], higher_is_better: bool = True, draws: int = BOOTSTRAPS,
               level: float = LEVEL, seed: int = 0) -> dict:
    """The mask ratio whose seeds score best on average, and how sure that is: a bootstrap that redraws each
    ratio's seeds (with replacement, each ratio apart) and takes the best mean each time.

    Args:
        values: ratio -> its per-seed scores (at least two seeds a ratio).

    Returns:
        {"best": the ratio of the best mean, "low", "high": the ``level`` interval of the best ratio over the
        draws, "share": ratio -> the share of draws in which it was best, "draws": (draws,) the best ratio of
        each draw (for :func:`lower_best`)}.
    """
    ratios = sorted(values)
    if len(ratios) < 2 or any(len(values[r]) < 2 for r in ratios):
        raise ValueError(f"values must hold at least two ratios of at least two seeds each, got "
                         f"{ {r: len(v) for r, v in values.items()} }")
    sign = 1 if higher_is_better else -1
    rng = np.random.default_rng(seed)
    means = np.stack([sign * np.asarray(values[r], float)[rng.integers(0, len(values[r]), (draws, len(values[r])))]
                      .mean(1) for r in ratios], 1)  # (draws, ratios)
    picked = np.asarray(ratios)[means.argmax(1)]
    best = ratios[int(np.argmax([sign * np.mean(values[r]) for r in ratios]))]
    tail = (1 - level) / 2
    return {"best": float(best), "low": float(np.quantile(picked, tail, method="lower")),
            "high": float(np.quantile(picked, 1 - tail, method="higher")),
            "share": {float(r): float(np.mean(picked == r)) for r in ratios}, "draws": picked}


def lower_best(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> tuple[str, float]:
    """Whether modality A's best mask ratio lies below B's, from their bootstrap draws (:func:`best_ratio`'s
    ``draws``, paired draw by draw): ("holds", share) where A's is lower in at least ``level`` of the draws
    after ties are split evenly, ("ruled out", share) where it is in at most 1 - ``level``, else
    ("undecided", share)."""
    share = float(np.mean(a < b) + 0.5 * np.mean(a == b))
    word = "holds" if share >= level else "ruled out" if share <= 1 - level else "undecided"
    return word, share


def epochs_to_reach(curve, target: float) -> float:
    """The first epoch (1-based) at which a (E,) ``curve`` (higher is better) reaches ``target``; a curve that
    never does counts as E + 1, one epoch past the run (a censored value, which favours it)."""
    curve = np.asarray(curve, float)
    hit = np.flatnonzero(curve >= target)
    return float(hit[0] + 1) if len(hit) else float(len(curve) + 1)


def decide(st: dict, paper_gap: float, *, p_family: float | None = None, family: int = 1,
           level: float = LEVEL) -> tuple[str, str]:
    """A verdict and its reason from :func:`paired`'s ``st`` and the paper's gap (signed like ours).

    Args:
        st: :func:`paired`'s result.
        paper_gap: the paper's gap, positive where the paper found the MAE better.
        p_family: the claim's Holm-adjusted p across its family (:func:`holm`); None: judged alone.
        family: how many claims that family has (for the reason).

    Returns:
        (verdict, reason). The verdict is one of :data:`VERDICTS`, the inconclusive ones with what they
        lack in brackets: "inconclusive (3 seeds)" (too few seeds), "inconclusive (underpowered)" (the
        interval holds both 0 and the paper's gap, with the power said), or plain "inconclusive".
    """
    n, alpha = st["n"], 1 - level
    if n == 0:
        return "not run", "no recorded run"
    if n < MIN_SEEDS:
        return f"inconclusive ({n} seed{'s' if n != 1 else ''})", f"a verdict needs at least {MIN_SEEDS} seeds"
    if st.get("identical"):
        return "inconclusive", (f"every seed gives the same gap ({st['gap']:.3g}): the seeds are not independent "
                                "replicates")
    if not all(np.isfinite([st["gap"], st["lo"], st["hi"]])):
        return "inconclusive", "a gap or its interval is not a finite number"
    pct = f"{level:.0%}"
    if not st["lo"] <= 0 <= st["hi"]:
        side = "MAE better" if st["gap"] > 0 else "MAE worse"
        if p_family is not None and p_family >= alpha:
            return "inconclusive", (f"{side}: the {pct} interval excludes 0, but the gap does not survive Holm's "
                                    f"correction across the {family} claims (adjusted p = {p_family:.2g})")
        same = np.sign(st["gap"]) == np.sign(paper_gap)
        reason = f"{side}, {'as in' if same else 'unlike'} the paper; the {pct} interval excludes 0"
        if same and not st["lo"] <= paper_gap <= st["hi"]:  # the rule reads the paper's gap on both sides
            where = "below" if st["hi"] < paper_gap else "above"
            reason += (f"; it holds in direction, but the paper's magnitude ({paper_gap:.3g}) is ruled out: the "
                       f"interval lies {where} it")
        return ("holds" if same else "does not hold"), reason
    if not st["lo"] <= paper_gap <= st["hi"]:
        return "the paper's effect ruled out", (f"the {pct} interval includes 0 but excludes the paper's gap "
                                                f"({paper_gap:.3g})")
    pw, need = power(paper_gap, st["sd"], n, level), seeds_for_power(paper_gap, st["sd"])
    more = f"{need} seeds would give {TARGET_POWER:.0%}" if need else f"more than {MAX_SEEDS} seeds would be needed"
    return "inconclusive (underpowered)", (f"the {pct} interval includes both 0 and the paper's gap; the power at "
                                           f"the paper's gap is {pw:.0%} with {n} seeds ({more})")


def direction(st: dict, level: float = LEVEL) -> str:
    """What :func:`paired`'s ``st`` says of the gap's sign, in a word: "better" or "worse" (the MAE arm,
    the interval excluding 0), or "no detectable difference" (the interval includes 0)."""
    if st["lo"] <= 0 <= st["hi"]:
        return "no detectable difference"
    return "better" if st["gap"] > 0 else "worse"


def compare(st: dict, level: float = LEVEL) -> tuple[str, str]:
    """A verdict for a comparison that no paper made, so with no gap to test against: whether the interval
    of :func:`paired`'s ``st`` excludes 0, and on which side.

    Returns:
        (verdict, reason): "MAE better" or "MAE worse" (the interval excludes 0), "no detectable difference"
        (it includes 0; the reason gives the largest gap in either direction it leaves open),
        "inconclusive (n seeds)" with fewer than :data:`MIN_SEEDS` seeds, or "not run".
    """
    n = st["n"]
    if n == 0:
        return "not run", "no recorded run"
    if n < MIN_SEEDS:
        return f"inconclusive ({n} seed{'s' if n != 1 else ''})", f"a verdict needs at least {MIN_SEEDS} seeds"
    word = direction(st, level)
    if word == "no detectable difference":
        return word, (f"the {level:.0%} interval includes 0: a gap from {st['lo']:.3g} to {st['hi']:.3g} is "
                      "not ruled out")
    return f"MAE {word}", f"the {level:.0%} interval excludes 0"
