"""When MAE pretraining pays, over seeds: the points of the chapter "When MAE pretraining pays"
(:mod:`maelib.payoff`) read from the run records, the MAE arm's gap to scratch at equal compute, and the
compute at which the two curves cross.

Declared before the runs (issue #35): at each budget of the MAE arm that lies within scratch's range of
FLOPs, the gap is the MAE arm's top-1 minus scratch's, scratch's read off its own curve at the same FLOPs
(linear in log FLOPs between its two nearest budgets), seed by seed. The crossover is the least compute from
which the mean gap stays positive: the MAE arm's cheapest shared budget where it is ahead from there on,
else the point where the gap's line between two budgets crosses zero (linear in log FLOPs), else none in
the range measured. Its interval redraws the seeds (a bootstrap), and says in how many draws there is one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import provenance, stats
from .payoff import MAE_ARM, SCRATCH
from .summary import judged_group
from .tuning import setting

POINT_COLUMNS = ["profile", "code", "seed", "arm", "fraction", "epochs", "flops", "top1"]


def frame(records: list[dict], profiles=("quick", "full")) -> pd.DataFrame:
    """Every point of the payoff chapter's default-setting runs, one row per seed, arm, label fraction and
    budget (:data:`POINT_COLUMNS`), pooled by a verdict's rules: per profile only the newest code version's
    runs, of those only the newest setting's, and the newest run per seed."""
    rows = []
    for r in records:  # oldest first
        if r["chapter"] != "payoff" or r["profile"] not in profiles or provenance.own_parameters(r):
            continue
        for point in r["metrics"].get("points", []):
            rows.append({"profile": r["profile"], "code": provenance.pool_version(r) or "", "rest": setting(r),
                         "seed": r["seed"], "finished": r["finished"], **{k: point[k] for k in POINT_COLUMNS[3:]}})
    out = pd.DataFrame(rows, columns=POINT_COLUMNS + ["rest", "finished"])
    newest = out.groupby("profile")[["code", "rest"]].transform("last")
    out = out[out["code"].eq(newest["code"]) & out["rest"].eq(newest["rest"])]
    last = out.groupby(["profile", "seed"])["finished"].transform("max")
    out = out[out["finished"].eq(last)]
    return out[POINT_COLUMNS].sort_values(["profile", "fraction", "arm", "seed", "epochs"]).reset_index(drop=True)


def gaps(points: pd.DataFrame) -> pd.DataFrame:
    """Each seed's gap at each MAE budget within scratch's FLOPs (see the module's docstring), for the
    points of one profile: one row per fraction, budget and seed with epochs, flops, mae, scratch (the
    interpolated top-1 %) and gap (their difference, positive where the MAE arm is ahead)."""
    rows = []
    for (fraction, seed), part in points.groupby(["fraction", "seed"]):
        mae = part[part["arm"] == MAE_ARM].sort_values("flops")
        base = part[part["arm"] == SCRATCH].sort_values("flops")
        if mae.empty or len(base) < 2:
            continue
        log_f = np.log(base["flops"].to_numpy())
        for _, m in mae.iterrows():
            if not log_f[0] <= np.log(m["flops"]) <= log_f[-1]:
                continue  # outside scratch's range: no extrapolation
            s = float(np.interp(np.log(m["flops"]), log_f, base["top1"].to_numpy()))
            rows.append({"fraction": fraction, "seed": seed, "epochs": int(m["epochs"]), "flops": float(m["flops"]),
                         "mae": float(m["top1"]), "scratch": s, "gap": float(m["top1"]) - s})
    return pd.DataFrame(rows, columns=["fraction", "seed", "epochs", "flops", "mae", "scratch", "gap"])


def crossing(flops, gap) -> float | None:
    """The least compute from which ``gap`` (at increasing ``flops``) stays positive: the first budget where
    it is positive from there on, or, where it was not positive at the budget before, the FLOPs at which the
    line between the two crosses zero (linear in log FLOPs); None when the last gap is not positive."""
    f, g = np.asarray(flops, float), np.asarray(gap, float)
    if not len(g) or g[-1] <= 0:
        return None
    k = len(g) - 1
    while k > 0 and g[k - 1] > 0:
        k -= 1
    if k == 0:
        return float(f[0])
    t = -g[k - 1] / (g[k] - g[k - 1])  # in [0, 1): g[k - 1] <= 0 < g[k]
    return float(np.exp(np.log(f[k - 1]) + t * (np.log(f[k]) - np.log(f[k - 1]))))


def crossovers(g: pd.DataFrame, draws: int = stats.BOOTSTRAPS, level: float = stats.LEVEL, seed: int = 0) -> dict:
    """Per label fraction of :func:`gaps`: {"flops": the crossover of the mean gaps (:func:`crossing`) or
    None, "low", "high": its ``level`` interval over draws of the seeds that have one (NaN with one seed),
    "share": the share of draws with a crossover, "share_first": of draws whose crossover is the cheapest shared
    budget (the MAE arm ahead throughout), "first", "last": the shared range's FLOPs, "gap_first",
    "gap_last": the mean gap at its ends, "ahead": whether the MAE arm is ahead at any of them, "seeds":
    how many}. Only budgets every seed reaches are read."""
    out, rng = {}, np.random.default_rng(seed)
    for fraction, part in g.groupby("fraction"):
        table = part.pivot(index="seed", columns="epochs", values="gap").dropna(axis=1)
        if table.empty:
            continue
        f = part.groupby("epochs")["flops"].mean()[table.columns].to_numpy(float)  # one budget's FLOPs: every seed's
        values = table.to_numpy()
        mean = values.mean(0)
        picks = rng.integers(0, len(values), (draws, len(values))) if len(values) > 1 else np.zeros((0, 1), int)
        found = [c for c in (crossing(f, values[i].mean(0)) for i in picks) if c is not None]
        first = sum(c == f[0] for c in found)
        tail = (1 - level) / 2
        out[float(fraction)] = {
            "flops": crossing(f, mean), "first": float(f[0]), "last": float(f[-1]),
            "gap_first": float(mean[0]), "gap_last": float(mean[-1]), "ahead": bool((mean > 0).any()),
            "seeds": len(values),
            "share": len(found) / len(picks) if len(picks) else float("nan"),
            "share_first": first / len(picks) if len(picks) else float("nan"),
            "low": float(np.quantile(found, tail)) if found else float("nan"),
            "high": float(np.quantile(found, 1 - tail)) if found else float("nan")}
    return out


def tflop(v: float) -> str:
    """FLOPs as a reader counts them: '157 TFLOP' (10^12), three significant digits under 100."""
    t = v / 1e12
    return f"{t:.3g} TFLOP" if t < 100 else f"{t:,.0f} TFLOP"


def sentence(cross: dict) -> str:
    """One sentence on when MAE pretraining pays at each label fraction of :func:`crossovers`, or the honest
    alternative: no crossover in the range measured, and which way the gap trends there."""
    parts = []
    for fraction, c in sorted(cross.items(), reverse=True):
        labels, span = f"with {fraction:.0%} of the labels", f"{tflop(c['first'])} to {tflop(c['last'])}"
        sure = (f" ({stats.LEVEL:.0%} interval over seeds {tflop(c['low'])} to {tflop(c['high'])}; a crossover in "
                f"{c['share']:.0%} of the draws)" if np.isfinite(c["low"]) else "")
        if c["flops"] is None:
            who = ("the MAE arm ahead at the cheapest, not at the largest" if c["gap_first"] > 0 else
                   "the MAE arm ahead at some budgets between, not at the largest" if c["ahead"] else
                   "scratch at least level throughout")
            parts.append(f"{labels}, at no compute in the range both arms reach ({span}): {who}, the gap going "
                         f"from {c['gap_first']:+.1f} to {c['gap_last']:+.1f} points")
        elif c["flops"] == c["first"]:
            ahead = (f" (ahead from there in {c['share_first']:.0%} of the draws that redraw the seeds)"
                     if np.isfinite(c["share_first"]) else "")
            parts.append(f"{labels}, already at the MAE arm's cheapest budget that scratch also reaches, "
                         f"{tflop(c['first'])}{ahead}")
        else:
            parts.append(f"{labels}, from about {tflop(c['flops'])}{sure}, in the range both arms reach ({span})")
    return "At this scale, MAE pretraining pays " + "; and ".join(parts) + "." if parts else ""


def branch_check(points: pd.DataFrame, records: list[dict], profile: str, epochs: int) -> dict:
    """The branched schedule beside separate runs, at one budget: per arm, the top-1 of the points on all
    the labels at ``epochs`` (Chapter 1's fine-tuning epochs) and of Chapter 1's judged seeds at ``profile``,
    each a separate run with warmup and cosine decay. {arm: {"branch": [...], "separate": [...], "within":
    whether the branches' mean lies within two standard deviations of the separate runs' mean}}; {} when
    either is missing."""
    group = judged_group(records, "images", profile)
    if group is None:
        return {}
    separate = {MAE_ARM: [v["mae"] for v in group["seeds"].values()],
                SCRATCH: [v["baseline"] for v in group["seeds"].values()]}
    out = {}
    for arm, sep in separate.items():
        mine = points[(points["arm"] == arm) & (points["fraction"] == 1.0) & (points["epochs"] == epochs)]["top1"]
        if len(mine) and len(sep) >= 2:
            out[arm] = {"branch": mine.tolist(), "separate": sep,
                        "within": bool(abs(mine.mean() - np.mean(sep)) <= 2 * np.std(sep, ddof=1))}
    return out
