"""The summary: each claim of the paper against the recorded runs, as a paired comparison with a 95% interval.

Numbers come from the run registry (``results/runs``, written by :mod:`maelib.runs`), never typed in.
Each chapter records, per seed, the value of its MAE arm and of its baseline (``metrics.claim``). For a
claim and a profile, the runs made with the chapter's default parameters are grouped by what they
computed (the resolved parameters, seeds aside) and by the code that computed them (``code``, a hash of
maelib): seeds are never pooled across code versions. The newest group with at least
:data:`MIN_SEEDS` seeds is judged (else the newest group, which is then inconclusive); the gap per seed
is MAE minus baseline, signed so that positive means the MAE is better, and a paired t-interval over the
seeds (scipy.stats) decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import paper, profiles, runs
from .train import GRID_EXTENSIONS

CONTROL = ("seed", "seeds", "profile", "live", "device", "data_dir", "checkpoint_dir", "tune")
MIN_SEEDS = 5
LEVEL = 0.95


@dataclass(frozen=True)
class Claim:
    table: str
    chapter: str
    claim: str
    metric: str
    higher_is_better: bool
    paper_mae_cell: tuple[str, str, str]  # (table, row, column) of maelib.paper
    paper_base_cell: tuple[str, str, str]
    mae_label: str
    base_label: str
    paper_dataset: str
    fair_label: str | None = None  # a fairer baseline shown beside the paper's (tables)
    key: str = "claim"  # the metrics entry of a run record that holds this claim's values per seed

    @property
    def paper_mae(self) -> float:
        return reference_value(self.paper_mae_cell)

    @property
    def paper_base(self) -> float:
        return reference_value(self.paper_base_cell)

    @property
    def sign(self) -> int:
        return 1 if self.higher_is_better else -1

    @property
    def paper_gap(self) -> float:
        """The paper's gap, signed like ours (positive: MAE better)."""
        return self.sign * (self.paper_mae - self.paper_base)


CLAIMS = [
    Claim("Table 1", "images", "MAE pretraining vs a ViT trained from scratch (TinyImageNet)", "top-1 (%)", True,
          ("Table 1", "", "Baseline MAE"), ("Table 1", "", "ViT (trained from scratch)"), "MAE + fine-tune",
          "scratch", "tinyimagenet"),
    Claim("Table 2", "series", "masking the transformer's input vs no masking (ETTh1 OT forecasts)",
          "test MSE (scaled)", False, ("Table 2", "MAE, mask=0.50", "Mean Sqr. Err."),
          ("Table 2", "no MAE", "Mean Sqr. Err."), "masked forecaster (ratio chosen on validation)",
          "forecaster without masking", "ETTh1"),
    Claim("Table 3", "segmentation", "MAE initialisation vs scratch for ViT-UPerNet", "mIoU", True,
          ("Table 3", "MIou", "MAE"), ("Table 3", "MIou", "No Pretrain"), "MAE init", "scratch", "ade20k"),
    Claim("Table 4", "volumes", "MAE-pretrained UNETR vs scratch", "mean Dice", True,
          ("Table 4", "Dice Score", "MAE"), ("Table 4", "Dice Score", "No pretraining"), "MAE init", "scratch", "btcv"),
    Claim("Table 5", "tabular", "MAE vs the paper's feed-forward imputer (housing, hidden numeric cells)",
          "MSE ([0, 1] scale)", False, ("Table 5", "MSE Loss", "MAE"), ("Table 5", "MSE Loss", "Baseline"),
          "MAE", "feed-forward (paper: full-row targets)", "housing",
          fair_label="feed-forward (re-masked observed cells)"),
]
# the paper's Table 2 has three masked rows; its claim compares no masking with the best of them (0.50)
# The long-horizon claim is the forecasting literature's, not the seed paper's: PatchTST reports masked
# pretraining then fine-tuning against supervised training on ETTh1 for multivariate data only (its Table 12),
# so that is the direction it is judged against (maelib.published).
CLAIMS.append(Claim("PatchTST, H = 96", "series", "MAE pretraining vs the same patch transformer from scratch, 96 "
                    "steps ahead (ETTh1 OT under the long-horizon protocol)", "test MSE (standardised)", False,
                    ("PatchTST Table 12", "96", "Fine-tuning MSE"), ("PatchTST Table 12", "96", "Sup. MSE"),
                    "MAE-pretrained patch transformer", "patch transformer from scratch", "ETTh1 (multivariate)",
                    key="claim_long"))


def reference_value(cell: tuple[str, str, str]) -> float:
    """A (table, row, column) cell of the seed paper's tables (:mod:`maelib.paper`) or of the published
    references (:mod:`maelib.published`), as a float."""
    from . import published

    return published.value(*cell) if cell[0] in published.REFERENCES else paper.value(*cell)


def reference_text(cell: tuple[str, str, str]) -> str:
    """The same cell's number as printed."""
    from . import published

    if cell[0] in published.REFERENCES:
        return published.frame(cell[0], printed=True).loc[int(cell[1]), cell[2]]
    return paper.table(cell[0], printed=True).loc[cell[1], cell[2]]


def setting(record: dict) -> str:
    """What a run computed, seeds and machines aside: its resolved parameters without the controls."""
    return json.dumps({k: v for k, v in record["resolved"].items() if k not in CONTROL}, sort_keys=True, default=str)


def dataset_of(record: dict, chapter: str) -> str:
    """The registry name of the data a run read (``"<name> (unverified copy)"`` when its checksum differed)."""
    data = record.get("data") or {}
    name = (record["metrics"].get("dataset") or data.get("dataset")
            or {"images": "tinyimagenet", "series": "ett", "tabular": "housing"}.get(chapter))
    return f"{name} (unverified copy)" if data.get("verified") is False else name


def seed_values(record: dict, key: str = "claim") -> list[dict]:
    """The per-seed values a record holds for one of its chapter's claims (metrics entry ``key``):
    [{seed, mae, baseline, ...}]."""
    metrics = record["metrics"]
    claim = metrics.get(key) if isinstance(metrics, dict) else None
    if not isinstance(claim, dict):
        return []
    keys = [k for k in claim if k not in ("seeds", "chosen")]
    return [{"seed": s, **{k: float(claim[k][i]) for k in keys}} for i, s in enumerate(claim["seeds"])]


def _is_default(record: dict) -> bool:
    return not {k for k in record["parameters"] if k not in CONTROL}


def groups(records: list[dict], chapter: str, profile: str, key: str = "claim") -> list[dict]:
    """The default-parameter runs of ``chapter`` at ``profile``, grouped by setting and code hash, newest
    group first. Each group: {"code", "setting", "dataset", "finished", "seeds": {seed: values}} with the
    newest value per seed."""
    out: dict[tuple, dict] = {}
    for r in records:  # oldest first, so newer values replace older ones
        if r["chapter"] != chapter or r["profile"] != profile or not _is_default(r):
            continue
        values = seed_values(r, key)
        if not values:
            continue
        group = (setting(r), r.get("code"))
        g = out.setdefault(group, {"code": r.get("code"), "setting": group[0], "seeds": {}})
        g.update(finished=r["finished"], dataset=dataset_of(r, chapter))
        for v in values:
            g["seeds"][v["seed"]] = v
    return sorted(out.values(), key=lambda g: g["finished"], reverse=True)


def judged_group(records: list[dict], chapter: str, profile: str, key: str = "claim") -> dict | None:
    """The newest group with at least MIN_SEEDS seeds, else the newest group (None without runs)."""
    found = groups(records, chapter, profile, key)
    enough = [g for g in found if len(g["seeds"]) >= MIN_SEEDS]
    return (enough or found or [None])[0]


def paired(mae, base, higher_is_better: bool = True, level: float = LEVEL) -> dict:
    """Paired comparison over seeds: n, mean gap (MAE minus baseline, positive = MAE better), its
    ``level`` t-interval (lo, hi) and the two-sided p of a zero mean gap."""
    gaps = (1 if higher_is_better else -1) * (np.asarray(mae, float) - np.asarray(base, float))
    n = len(gaps)
    out = {"n": n, "gap": float(gaps.mean()) if n else float("nan"), "lo": float("nan"), "hi": float("nan"),
           "p": float("nan")}
    if n < 2:
        return out
    if np.ptp(gaps) == 0:  # every seed the same gap: the interval is that point
        return {**out, "lo": out["gap"], "hi": out["gap"], "p": 0.0 if out["gap"] else 1.0}
    test = stats.ttest_1samp(gaps, 0.0)
    ci = test.confidence_interval(level)
    return {**out, "lo": float(ci.low), "hi": float(ci.high), "p": float(test.pvalue)}


def verdict(st: dict, claim: Claim, same_dataset: bool, floor: list[float] | None = None,
            mae: list[float] | None = None, base: list[float] | None = None) -> tuple[str, str]:
    """holds / does not hold / inconclusive, and why, from :func:`paired`'s result ``st``.

    A verdict needs MIN_SEEDS seeds, finite values and a 95% interval that excludes 0; its direction is
    compared with the paper's. Where both forecasting arms are worse than the persistence floor, the
    reason says so (a caveat, not a different verdict).
    """
    if st["n"] == 0:
        return "not run", "no recorded run"
    notes = [] if same_dataset else ["a different dataset from the paper's"]
    if floor is not None and np.mean(mae) > np.mean(floor) and np.mean(base) > np.mean(floor):
        notes.append("both arms are worse than the persistence floor")
    note = "".join(f"; {n}" for n in notes)
    if not all(np.isfinite([st["gap"], st["lo"], st["hi"]])) and st["n"] >= MIN_SEEDS:
        return "inconclusive", "a gap or its interval is not a finite number" + note
    if st["n"] < MIN_SEEDS:
        return f"inconclusive ({st['n']} seed{'s' if st['n'] != 1 else ''})", \
            f"a verdict needs at least {MIN_SEEDS} seeds" + note
    if st["lo"] <= 0 <= st["hi"]:
        return "inconclusive", "the 95% interval of the gap includes 0" + note
    side = "MAE better" if st["gap"] > 0 else "MAE worse"
    if np.sign(st["gap"]) == np.sign(claim.paper_gap):
        return "holds", f"{side}, as in the paper; the 95% interval excludes 0" + note
    return "does not hold", f"{side}, unlike the paper; the 95% interval excludes 0" + note


def judged(part: pd.DataFrame) -> pd.Series | None:
    """Of one claim's rows (one per profile), the one its verdict comes from: the full profile's when it
    has at least MIN_SEEDS seeds, else the quick one's when it has, else the one with the most seeds
    (the full profile on a tie); None when no profile was run."""
    run = part[part["n"] > 0]
    if run.empty:
        return None
    enough = run[run["n"] >= MIN_SEEDS]
    pool = enough if len(enough) else run[run["n"] == run["n"].max()]
    full = pool[pool["profile"] == "full"]
    return (full if len(full) else pool).iloc[0]


def claim_rows(records: list[dict], profiles=("quick", "full")) -> pd.DataFrame:
    """One row per claim and profile: n, the arms' means, the paired gap with its interval and p, the
    paper's gap, the verdict and why (the group judged: newest code with enough seeds)."""
    rows = []
    for c in CLAIMS:
        for prof in profiles:
            g = judged_group(records, c.chapter, prof, c.key)
            vals = list(g["seeds"].values()) if g else []
            mae, base = [v["mae"] for v in vals], [v["baseline"] for v in vals]
            st = paired(mae, base, c.higher_is_better)
            floor = [v["floor"] for v in vals] if vals and "floor" in vals[0] else None
            same = bool(g) and g["dataset"] == c.paper_dataset
            word, why = verdict(st, c, same, floor, mae, base)
            fair = [v["baseline_fair"] for v in vals] if vals and "baseline_fair" in vals[0] else None
            rows.append({"table": c.table, "claim": c.claim, "profile": prof, "metric": c.metric, **st,
                         "mae": np.mean(mae) if mae else float("nan"),
                         "baseline": np.mean(base) if base else float("nan"),
                         "fair": np.mean(fair) if fair else float("nan"),
                         "fair_gap": paired(mae, fair, c.higher_is_better) if fair else None,
                         "paper_mae": c.paper_mae, "paper_base": c.paper_base, "paper_gap": c.paper_gap,
                         "dataset": g["dataset"] if g else "", "code": (g["code"] or "")[:8] if g else "",
                         "verdict": word, "reason": why})
    return pd.DataFrame(rows)


def verdicts(rows: pd.DataFrame) -> dict[str, str]:
    """Each claim's verdict (:func:`judged` row of :func:`claim_rows`)."""
    out = {}
    for table, part in rows.groupby("table", sort=False):
        row = judged(part)
        out[table] = row["verdict"] if row is not None else "not run"
    return out


def claims_table(records: list[dict]) -> pd.DataFrame:
    """The verdict table the book shows: per claim, the paper's numbers, then per profile the paired gap
    (mean, 95% interval, seeds, p) and the verdict with its reason; the judged verdict is the full
    profile's when it was run, else the quick one's."""
    from .viz import sig

    rows = claim_rows(records)
    out = []
    for c in CLAIMS:
        row = {"table": c.table, "claim (metric)": f"{c.claim} ({c.metric})",
               "paper: MAE / baseline": " / ".join(reference_text(cell) for cell in (c.paper_mae_cell, c.paper_base_cell))}
        part = rows[rows["table"] == c.table]
        for _, r in part.iterrows():
            prof = r["profile"]
            if r["n"] == 0:
                row[f"{prof}: gap [95% CI] (n), p"] = "not run"
                continue
            ci = "" if np.isnan(r["lo"]) else f" [{sig(r['lo'])}, {sig(r['hi'])}]"
            p = "" if np.isnan(r["p"]) else f", p = {sig(r['p'], 2)}"
            row[f"{prof}: gap [95% CI] (n), p"] = f"{sig(r['gap'])}{ci} (n = {r['n']}){p}"
        chosen = judged(part)
        row["verdict"] = (f"{chosen['verdict']}: {chosen['reason']} ({chosen['profile']} profile)"
                          if chosen is not None else "not run")
        out.append(row)
    return pd.DataFrame(out).set_index("table")


def sweep_frame(records: list[dict]) -> pd.DataFrame:
    """Runs that changed only the mask ratio (and the seeds): chapter, metric, profile, mask_ratio, seed,
    value, code; one value per seed, the newest per (chapter, profile, mask ratio, seed), all made by the
    newest code version of each chapter and profile (seeds of different code are not pooled)."""
    rows = []
    for r in records:
        changed = {k for k in r["parameters"] if k not in CONTROL}
        metric = r["metrics"].get("mask_ratio_metric") if isinstance(r["metrics"], dict) else None
        if metric and changed <= {"mask_ratio"}:
            seeds = (r["metrics"].get("claim") or {}).get("seeds") or [r["seed"]]
            for seed, value in zip(seeds, metric["values"]):
                rows.append({"chapter": r["chapter"], "metric": metric["label"], "profile": r["profile"],
                             "mask_ratio": r["resolved"].get("mask_ratio"), "seed": seed, "value": value,
                             "code": r.get("code")})
    frame = pd.DataFrame(rows, columns=["chapter", "metric", "profile", "mask_ratio", "seed", "value", "code"])
    frame = frame.drop_duplicates(["chapter", "profile", "mask_ratio", "seed", "code"], keep="last")
    newest = frame.groupby(["chapter", "profile"])["code"].transform("last")  # records come oldest first
    return frame[frame["code"].eq(newest) | (frame["code"].isna() & newest.isna())].reset_index(drop=True)


TUNING_SEED = 0  # the seed whose run chooses the learning rates the other seeds reuse


def tuning(chapter: str, resolved: dict, root=runs.RECORDS) -> dict | None:
    """The learning rates a run of ``chapter`` chose on held-out training data for the same setting (the
    resolved parameters, seeds aside) and the same code version, made at :data:`TUNING_SEED`: its record's
    ``lr`` (arm -> chosen), ``lr_grid`` (arm -> {lr: held-out score}), ``finished`` and ``git_commit``;
    None when there is none (the run then chooses them itself)."""
    want = setting({"resolved": resolved})
    code = runs.code_hash()
    for r in reversed(load(root)):  # newest first
        m = r["metrics"] if isinstance(r["metrics"], dict) else {}
        if (r["chapter"] == chapter and r.get("code") == code and r["seed"] == TUNING_SEED and setting(r) == want
                and m.get("lr_grid") and all(m["lr_grid"].values())):
            return {"lr": m["lr"], "lr_grid": m["lr_grid"], "finished": r["finished"], "git_commit": r["git_commit"]}
    return None


PRETRAINING_ONLY = ("mask_ratio", "norm_target")  # parameters that change what pretraining does, nothing else


def default_tuning(chapter: str, resolved: dict, root=runs.RECORDS) -> dict | None:
    """For a run that differs from its profile's defaults only in :data:`PRETRAINING_ONLY` parameters and
    does not ask to choose anew (``tune`` false): :func:`tuning` of the default setting, with ``borrowed``
    (the names that differ); None otherwise, or when the default setting has no recorded choice."""
    if resolved.get("tune", True):
        return None
    defaults = vars(profiles.resolve(chapter, resolved["profile"]))
    differ = [k for k in resolved if k not in CONTROL and resolved[k] != defaults.get(k)]
    if not differ or not set(differ) <= set(PRETRAINING_ONLY):
        return None
    found = tuning(chapter, {**resolved, **{k: defaults[k] for k in differ}}, root)
    return {**found, "borrowed": differ} if found else None


def tuning_note(chapter: str, resolved: dict, root=runs.RECORDS) -> str | None:
    """What a run is about to do about its learning rates, said before it starts when it will choose them
    (a grid of extra fine-tunings) or reuse the default setting's; None when it reuses its own setting's."""
    if "long_lr_grid" in resolved:  # series: the long-horizon arms choose on the validation months
        extra = 2 * len(resolved["long_horizons"]) * (len(resolved["long_lr_grid"]) - 1)
        return None if tuning(chapter, resolved, root) else (
            f"{chapter}: no recorded choice for this setting and code, so this run chooses the long-horizon "
            f"learning rates on the validation months: {extra} extra trainings (more where the grid grows)")
    if "tune" not in resolved or (resolved.get("finetune_lr") and resolved.get("scratch_lr")):
        return None
    grid, cost = len(resolved["lr_grid"]), 2 * len(resolved["lr_grid"])
    choose = (f"chooses both arms' learning rates on held-out training images: {cost} extra fine-tunings (up to "
              f"{cost + 2 * GRID_EXTENSIONS} where the grid of {grid} grows), most of the run's time")
    if resolved["tune"]:
        return f"{chapter}: tune is true, so this run {choose}"
    if tuning(chapter, resolved, root):
        return None
    borrowed = default_tuning(chapter, resolved, root)
    if borrowed:
        return (f"{chapter}: this run changes only what pretraining does ({', '.join(borrowed['borrowed'])}) and "
                f"reuses the learning rates chosen for the default setting; -p tune true chooses them anew ({cost} "
                "extra fine-tunings)")
    return f"{chapter}: no recorded choice for this setting and code, so this run {choose}"


def tuning_source(tuned: dict | None) -> str:
    """Who chose a run's learning rates, for its page: this run, the seed-0 run of its setting, or the
    default setting's seed-0 run (:func:`default_tuning`)."""
    if not tuned:
        return "this run"
    made = f"({tuned['finished'][:10]}, commit {(tuned['git_commit'] or '')[:8]})"
    if tuned.get("borrowed"):
        return (f"the seed-{TUNING_SEED} run of the default setting and this code {made}, reused because this run "
                f"changes only what pretraining does ({', '.join(tuned['borrowed'])}); `-p tune true` chooses them "
                "anew for this setting")
    return f"the seed-{TUNING_SEED} run of this setting and code {made}, whose choice every seed reuses"


def load(root=runs.RECORDS) -> list[dict]:
    return runs.load_records(root=root)


def recorded_runs(chapter: str, profile: str = "full", root=runs.RECORDS) -> pd.DataFrame:
    """The registry's default-parameter runs of ``chapter`` at ``profile`` that hold claim values, one
    row per seed: date, code, device, seed, wall time and the two arms' values."""
    claim = next(c for c in CLAIMS if c.chapter == chapter)
    rows = []
    for r in load(root):
        if r["chapter"] != chapter or r["profile"] != profile or not _is_default(r):
            continue
        for v in seed_values(r):
            rows.append({"finished": r["finished"][:16].replace("T", " "), "code": (r.get("code") or "")[:8],
                         "device": r["device"], "seed": v["seed"], "run's wall time (min)": round(r["wall_s"] / 60, 1),
                         f"{claim.mae_label} ({claim.metric})": v["mae"],
                         f"{claim.base_label} ({claim.metric})": v["baseline"]})
    return pd.DataFrame(rows)


def show_recorded(chapter: str, profile: str = "full") -> None:
    """Display the recorded runs of a chapter at ``profile``, or say that none is recorded."""
    from IPython.display import Markdown, display

    from .viz import show_table

    frame = recorded_runs(chapter, profile)
    if frame.empty:  # one line while there is nothing to show
        display(Markdown(f"*None yet: no {profile}-profile run of this chapter is recorded in `results/runs/`.*"))
    else:
        show_table(frame.set_index("finished"), f"The {profile}-profile runs of this chapter recorded in "
                   "`results/runs/` (with their date, commit and device), one row per seed: a book built on a "
                   "laptop still shows the full-scale study.", f"table-recorded-{chapter}-{profile}")
