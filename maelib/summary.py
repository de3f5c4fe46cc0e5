"""The summary: each claim of the paper against the recorded runs, with a verdict and its reason.

Numbers come from the run registry (``results/runs``, written by :mod:`maelib.runs`), never typed in:
for every chapter and profile, the runs made with the chapter's default parameters are grouped over
their seeds (mean and standard deviation); runs that changed only the mask ratio form the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import runs

CONTROL = ("seed", "profile", "live", "device", "data_dir", "checkpoint_dir")


@dataclass(frozen=True)
class Claim:
    table: str
    chapter: str
    claim: str
    metric: str
    higher_is_better: bool
    paper_mae: float | None
    paper_base: float | None
    mae_label: str
    base_label: str
    paper_dataset: str


CLAIMS = [
    Claim("Table 1", "images", "MAE pretraining vs a ViT from scratch (TinyImageNet top-1, %)", "top-1 %", True,
          37.7, 45.6, "MAE + fine-tune", "scratch", "tinyimagenet"),
    Claim("Table 2", "series", "masking the transformer's input vs no masking (ETTh1 OT, test MSE)", "MSE", False,
          None, None, "best masked transformer", "transformer AE (no masking)", "ett"),
    Claim("Table 3", "segmentation", "MAE initialisation vs scratch for ViT-UPerNet (ADE20K mIoU)", "mIoU", True,
          0.2888, 0.2803, "MAE init", "scratch", "ade20k"),
    Claim("Table 4", "volumes", "MAE-pretrained UNETR vs scratch (BTCV mean Dice)", "Dice", True,
          0.7712, 0.7548, "MAE init", "scratch", "btcv"),
    Claim("Table 5", "tabular", "MAE vs a feed-forward imputer (housing, MSE on hidden cells)", "MSE", False,
          0.5171, 0.0093, "MAE (re-masked observed cells)", "feed-forward (re-masked observed cells)", "housing"),
]


def pair(record: dict, claim: Claim) -> tuple[float, float, float | None]:
    """(MAE value, baseline value, floor) of one run record for one claim; floor = persistence for series."""
    m = record["metrics"]
    if claim.chapter == "images":
        return 100 * m["acc_finetune"], 100 * m["acc_scratch"], None
    if claim.chapter == "series":
        masked = [v for k, v in m["mse"].items() if k.startswith("transformer, mask")]
        return min(masked), m["mse"][claim.base_label], m["persistence_mse"]
    if claim.chapter == "segmentation":
        return m["miou"]["MAE init"], m["miou"]["scratch"], None
    if claim.chapter == "volumes":
        return m["dice"]["MAE init"], m["dice"]["scratch"], None
    return m["mse"][claim.mae_label], m["mse"][claim.base_label], None


def dataset_of(record: dict, chapter: str) -> str:
    return record["metrics"].get("dataset", {"images": "tinyimagenet", "series": "ett", "tabular": "housing"}.get(chapter))


def setting(record: dict) -> str:
    """What a run computed, seeds and machines aside: its resolved parameters without the controls."""
    import json

    return json.dumps({k: v for k, v in record["resolved"].items() if k not in CONTROL}, sort_keys=True, default=str)


def default_runs(records: list[dict], chapter: str, profile: str) -> list[dict]:
    """The newest run per seed among runs of ``chapter`` at ``profile`` with default parameters, all with
    the same resolved setting as the newest one (a profile whose defaults changed is not mixed in)."""
    pool = [r for r in records if r["chapter"] == chapter and r["profile"] == profile
            and not {k for k in r["parameters"] if k not in CONTROL}]
    if not pool:
        return []
    newest = setting(pool[-1])
    latest = {r["seed"]: r for r in pool if setting(r) == newest}
    return [latest[s] for s in sorted(latest)]


def verdict(d_mae: list[float], d_base: list[float], claim: Claim, same_dataset: bool,
            floor: list[float] | None = None) -> tuple[str, str]:
    """holds / does not hold / inconclusive, and why.

    The gap is MAE minus baseline (sign flipped when lower is better, so positive = MAE better). It is
    inconclusive with fewer than 3 seeds, when the mean gap is within twice its standard error, or
    (forecasting) when both models are worse than the persistence floor.
    """
    sign = 1 if claim.higher_is_better else -1
    gaps = sign * (np.asarray(d_mae) - np.asarray(d_base))
    if len(gaps) == 0:
        return "not run", "no recorded run"
    note = "" if same_dataset else "; different dataset from the paper's"
    if floor is not None and np.mean(d_mae) > np.mean(floor) and np.mean(d_base) > np.mean(floor):
        return "inconclusive", "both models are worse than the persistence floor" + note
    if len(gaps) < 3:
        return "inconclusive", f"{len(gaps)} seed(s): no spread to judge the gap against" + note
    se = gaps.std(ddof=1) / np.sqrt(len(gaps))
    if abs(gaps.mean()) <= 2 * se:
        return "inconclusive", "the gap is within the seed-to-seed noise" + note
    if claim.paper_mae is None:
        word = "MAE better" if gaps.mean() > 0 else "MAE worse"
        return "no paper numbers", f"{word} beyond the noise; the paper's numbers were not available" + note
    paper_gap = sign * (claim.paper_mae - claim.paper_base)
    if np.sign(gaps.mean()) == np.sign(paper_gap):
        return "holds", "same direction as the paper, beyond the seed-to-seed noise" + note
    return "does not hold", "opposite direction to the paper, beyond the seed-to-seed noise" + note


def _cell(values: list[float]) -> str:
    """Mean ± sample standard deviation, four significant digits, and the number of seeds."""
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.4g} (1 seed)"
    return f"{np.mean(values):.4g} ± {np.std(values, ddof=1):.2g} ({len(values)} seeds)"


def claims_table(records: list[dict]) -> pd.DataFrame:
    """One row per claim: the paper's numbers, ours per profile (mean ± std over seeds), the verdict."""
    rows = []
    for c in CLAIMS:
        row = {"table": c.table, "claim": c.claim,
               "paper (MAE / baseline)": "not available" if c.paper_mae is None else f"{c.paper_mae:g} / {c.paper_base:g}"}
        judged = None
        for prof in ("quick", "full"):
            rs = default_runs(records, c.chapter, prof)
            vals = [pair(r, c) for r in rs]
            mae_v, base_v = [v[0] for v in vals], [v[1] for v in vals]
            row[f"{prof}: MAE"] = _cell(mae_v)
            row[f"{prof}: baseline"] = _cell(base_v)
            if rs:
                floor = [v[2] for v in vals] if vals[0][2] is not None else None
                same = dataset_of(rs[0], c.chapter) == c.paper_dataset
                judged = (prof, *verdict(mae_v, base_v, c, same, floor))
        row["verdict"] = judged[1] if judged else "not run"
        row["reason"] = f"{judged[2]} ({judged[0]} profile)" if judged else "no recorded run"
        rows.append(row)
    return pd.DataFrame(rows).set_index("table")


SWEEP_METRIC = {
    "images": ("validation top-1 (%)", lambda m: 100 * m["acc_finetune"]),
    "series": ("test MSE, MAE-pretrained patch transformer", lambda m: m["mse"]["patch transformer, MAE-pretrained"]),
    "tabular": ("MSE on hidden cells, MAE", lambda m: m["mse"]["MAE (re-masked observed cells)"]),
    "segmentation": ("validation mIoU, MAE init", lambda m: m["miou"]["MAE init"]),
}


def sweep_frame(records: list[dict]) -> pd.DataFrame:
    """Runs that changed only the mask ratio (and the seed): chapter, profile, mask_ratio, seed, value."""
    rows = []
    for r in records:
        changed = {k for k in r["parameters"] if k not in CONTROL}
        if r["chapter"] in SWEEP_METRIC and changed <= {"mask_ratio"}:
            ratio = r["resolved"].get("mask_ratio")
            label, get = SWEEP_METRIC[r["chapter"]]
            rows.append({"chapter": r["chapter"], "metric": label, "profile": r["profile"], "mask_ratio": ratio,
                         "seed": r["seed"], "value": get(r["metrics"])})
    frame = pd.DataFrame(rows, columns=["chapter", "metric", "profile", "mask_ratio", "seed", "value"])
    return frame.drop_duplicates(["chapter", "profile", "mask_ratio", "seed"], keep="last")


def load(root=runs.RECORDS) -> list[dict]:
    return runs.load_records(root=root)


def recorded_runs(chapter: str, profile: str = "full", root=runs.RECORDS) -> pd.DataFrame:
    """The registry's runs of ``chapter`` at ``profile`` (default parameters), newest last, one row each:
    date, commit, device, seed, wall time and the chapter's headline numbers, for a chapter to show
    beside its own run."""
    rows = []
    for r in default_runs(load(root), chapter, profile):
        claim = next(c for c in CLAIMS if c.chapter == chapter)
        mae_v, base_v, _ = pair(r, claim)
        rows.append({"finished": r["finished"][:16].replace("T", " "), "commit": (r["git_commit"] or "")[:8],
                     "device": r["device"], "seed": r["seed"], "wall (min)": round(r["wall_s"] / 60, 1),
                     f"{claim.mae_label} ({claim.metric})": mae_v, f"{claim.base_label} ({claim.metric})": base_v})
    return pd.DataFrame(rows)


def show_recorded(chapter: str, profile: str = "full") -> None:
    """Display the recorded runs of a chapter at ``profile``, or say that none is recorded."""
    from IPython.display import Markdown, display

    frame = recorded_runs(chapter, profile)
    if frame.empty:
        display(Markdown(f"*No {profile}-profile run of this chapter is recorded in `results/runs/` yet.*"))
    else:
        display(Markdown(f"Recorded **{profile}-profile** runs of this chapter (from `results/runs/`):"))
        display(frame.style.format(precision=4).hide(axis="index"))
