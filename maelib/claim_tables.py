"""The tables and figures of the summary chapter: each claim's verdict, its evidence, its scale, its
history, its two scratch arms, whether every arm learned, where each arm's learning rate lies in its grid,
and its curves over the fine-tuning run.

Each is laid out from :func:`maelib.summary.claim_rows` (the registry's groups and their statistics,
:mod:`maelib.stats`); nothing here computes a verdict of its own.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from . import provenance, stats, summary
from .summary import (ARMS, CLAIMS, Claim, _values, arm_label, claim_rows, groups, judged,
                      judged_group, learned, reference_text, seed_values)
from .report import Results
from .tuning import TUNING_SEED, setting



REACH = 0.9  # "in fewer epochs": the epochs each arm needs to reach this fraction of scratch's final score


def curves(records: list[dict], c: Claim, profile: str) -> dict[str, np.ndarray]:
    """The judged group's per-epoch validation curves of a claim's two arms: label -> (seeds, epochs);
    {} where the runs recorded none (seeds whose curves differ in length from the first are left out)."""
    g = judged_group(records, c.chapter, profile, c.key)
    vals = [v for v in (g["seeds"].values() if g else []) if "mae_curve" in v]
    vals = [v for v in vals if len(v["mae_curve"]) == len(vals[0]["mae_curve"])]
    if not vals:
        return {}
    return {c.mae_label: np.array([v["mae_curve"] for v in vals]),
            c.base_label: np.array([v["baseline_curve"] for v in vals])}


def epochs_table(records: list[dict], profiles=("quick", "full")) -> pd.DataFrame:
    """For each claim about the whole fine-tuning run and each profile with curves: per seed, the epochs
    each arm needed to reach :data:`REACH` of the scratch arm's final score (a run that never does counts
    one epoch past its end), and the paired gap in epochs (positive = the MAE arm got there sooner)."""
    rows = []
    for c in CLAIMS:
        for prof in profiles:
            got = curves(records, c, prof)
            if not got:
                continue
            mae, base = got.values()
            targets = REACH * base[:, -1]
            e_mae = [stats.epochs_to_reach(m, t) for m, t in zip(mae, targets)]
            e_base = [stats.epochs_to_reach(b, t) for b, t in zip(base, targets)]
            st = stats.paired(e_mae, e_base, higher_is_better=False)
            rows.append({"table": c.table, "profile": prof, "epochs": mae.shape[1],
                         # one column an arm whatever the claim calls it: "MAE init" and "MAE + fine-tune"
                         # columns left "n/a" in each other's rows (the tour)
                         "MAE arm: epochs": np.mean(e_mae), "scratch: epochs": np.mean(e_base),
                         "epochs saved [95% CI] (n)": _gap_text(st), "p (t)": _p_text(st["p"]),
                         "p (sign-flip)": _p_text(st["p_flip"], 3),
                         "reading": REACH_WORDS[stats.direction(st)] if st["n"] >= 2 else "one seed: no interval"})
    return pd.DataFrame(rows)


REACH_WORDS = {"better": "the MAE arm gets there sooner", "worse": "the MAE arm gets there later",
               "no detectable difference": "no detectable difference (the interval includes 0)"}


def learning_table(records: list[dict], profiles=("quick", "full")) -> pd.DataFrame:
    """Whether every seed of every arm learned, per claim, profile and arm of the judged group: the arm's
    median and worst seed, and whether every seed learned (:func:`maelib.summary.learned`); a forecaster
    is also compared with the persistence floor, which it should not be worse than."""
    from .viz import sig

    rows = []
    for c in CLAIMS:
        for prof in profiles:
            g = judged_group(records, c.chapter, prof, c.key)
            floor = _values(g, "floor")
            for key, _ in ARMS:
                vals, arm = _values(g, key), arm_label(c, key)
                if not vals:
                    continue
                med = float(np.median(vals))
                worst = min(vals) if c.higher_is_better else max(vals)
                ok = learned(vals, c.higher_is_better)
                beats = "–" if floor is None else ("yes" if np.mean(vals) <= np.mean(floor) else "no")
                rows.append({"table": c.table, "profile": prof, "arm": arm, "seeds": len(vals), "median": sig(med),
                             "worst seed": sig(worst), "every seed learned": "yes" if ok else "no",
                             "as good as persistence": beats})
    return pd.DataFrame(rows, columns=["table", "profile", "arm", "seeds", "median", "worst seed",
                                       "every seed learned", "as good as persistence"])


def rate_table(records: list[dict], profiles=("quick", "full")) -> pd.DataFrame:
    """Where each arm's learning rate lies in the grid it was chosen from, per chapter and profile of the
    judged group (every arm the chapter trains, not only its claims'): the rates tried (the grid, grown
    where the best lay at an end), the chosen one, and "inside" or "at the top"/"at the bottom" of what was
    tried. A grid grows at most twice, so a rate at an end may be short of the best."""
    from .viz import sig

    rows = []
    for chapter, key in dict((c.chapter, c.key) for c in CLAIMS).items():  # a chapter's first claim
        for prof in profiles:
            g = judged_group(records, chapter, prof, key)
            chooser = g and next((r for r in reversed(records) if r["chapter"] == chapter and r["seed"] == TUNING_SEED
                                  and provenance.pool_version(r) == g["code"] and setting(r) == g["setting"]), None)
            m = provenance.results_of(chooser) if chooser else Results()
            for arm, chosen in m.lr.items():
                tried = sorted(float(v) for v in m.lr_grid.get(arm) or {})
                where = ("fixed (no grid)" if len(tried) < 2 else "inside" if tried[0] < chosen < tried[-1] else
                         "at the top" if chosen == tried[-1] else "at the bottom")
                rows.append({"chapter": chapter, "profile": prof, "arm": arm, "rates tried": ", ".join(map(sig, tried)),
                             "chosen": sig(chosen), "where": where})
    return pd.DataFrame(rows, columns=["chapter", "profile", "arm", "rates tried", "chosen", "where"])


PAPERS = "paper's table"  # the index of every claims table: its rows are the paper's Tables 1-5, not the book's
NBSP = "\u00a0"  # a table cell breaks its line at a space: "(n = 5)" stays on one line
NB_HYPHEN = "\u2011"  # a non-breaking hyphen: a line never breaks inside an exponent


def _unbroken(text: str) -> str:
    """``text`` with a non-breaking hyphen in every exponent: "3.46e-" / "06" never splits across lines."""
    return text.replace("e-", f"e{NB_HYPHEN}")


def _needs_exponent(r) -> bool:
    return any(0 < abs(float(r[k])) < 1e-4 for k in ("gap", "lo", "hi") if not np.isnan(float(r[k])))


def _gap_text(r, exponent: bool = False) -> str:
    """``gap [lo, hi] (n = k)`` of a :func:`claim_rows` row: the three numbers in one format (all in
    scientific notation where one needs it, or where ``exponent`` says that a neighbouring row of the same
    quantity does: never ``-6.59e-05 [-0.000110, -2.22e-05]``, nor ``-0.000135`` above ``-6.59e-05``), and
    "(n = k)" unbroken."""
    from .viz import column_cells

    if np.isnan(r["lo"]):
        gap, ci = column_cells([float(r["gap"])], exponent=exponent)[0], ""
    else:
        gap, lo, hi = column_cells([float(r["gap"]), float(r["lo"]), float(r["hi"])], exponent=exponent)
        ci = f" [{lo}, {hi}]"
    return _unbroken(f"{gap}{ci} (n{NBSP}={NBSP}{r['n']})")


def _p_text(value, digits: int = 2) -> str:
    from .viz import sig

    return "–" if value is None or np.isnan(value) else _unbroken(sig(value, digits))


def _p_cells(r) -> str:
    """``t / Holm / sign-flip``: the sign-flip p to three digits, since it is a multiple of 1/2^n (0.0625, the
    least five seeds allow, would print as 0.062 at two)."""
    return " / ".join([_p_text(r["p"]), _p_text(r["p_holm"]), _p_text(r["p_flip"], 3)])


def _power_text(power, need) -> str:
    """``22% (20)``: the power at the paper's gap and the seeds that would give 80% (``> 20`` beyond the most
    a sweep runs)."""
    seeds = f">{NBSP}{stats.MAX_SEEDS}" if need is None or pd.isna(need) else str(int(need))
    return f"{'–' if np.isnan(power) else f'{power:.0%}'} ({seeds})"


def claims_table(records: list[dict]) -> pd.DataFrame:
    """The verdict table the book shows, one row per claim, from its judged profile (:func:`judged`):
    the paper's numbers, our paired gap with its 95% interval and seeds, the t-test's, Holm-adjusted and
    sign-flip p, the power at the paper's gap, and the verdict in a word or two (:func:`verdict_reasons` gives
    why and its caveats, under the table; the glance table marks them), all of the paper's comparison; then the compute comparison's verdict in a word or two, where the chapter trains that arm
    (:func:`budget_table` gives its numbers)."""
    rows = claim_rows(records)
    out = []
    for c in CLAIMS:
        chosen = judged(rows[rows["table"] == c.table])
        cell = chosen["paper_cell"] if chosen is not None else c.paper_mae_cell
        note = f"{NBSP}{NOTE_MARK}" if chosen is not None and chosen["paper_note"] else ""  # the note: paper_notes
        row = {"table": c.table,
               "paper: MAE / baseline": " / ".join(reference_text(x) for x in (cell, c.paper_base_cell)) + note}
        if chosen is None:
            out.append({**row, "gap [95% CI] (n)": "not run", "p: t / Holm / sign-flip": "–",
                        "power at the paper's gap": "–", "verdict": "not run", COMPUTE_VERDICT: "–"})
            continue
        power = "–" if np.isnan(chosen["power"]) else f"{chosen['power']:.0%}"
        out.append({**row, "gap [95% CI] (n)": f"{_gap_text(chosen)}, {chosen['profile']}",
                    "p: t / Holm / sign-flip": _p_cells(chosen),
                    "power at the paper's gap": power, "verdict": scale_marked(short_verdict(chosen)),
                    COMPUTE_VERDICT: scale_marked(compute_word(chosen)) or "not trained"})
    return pd.DataFrame(out).set_index("table").rename_axis(PAPERS)


def compute_word(row) -> str:
    """The compute comparison's verdict in a word or two, marked where its own checks fail (an MAE that did
    not learn, too few tokens, the MAE or the budget-matched arm still improving: its ``matched_notes``);
    "" where the chapter trains no budget-matched arm."""
    if row is None or not row["matched_verdict"]:
        return ""
    word = row["matched_verdict"][0]
    return f"{word}; {NOT_MEANINGFUL}" if NOT_MEANINGFUL in row["matched_notes"] else word


COMPUTE_VERDICT = "scratch at the MAE arm's compute"  # the compute comparison's column in the claims table


NOTE_MARK = "†"  # a paper cell with a note under the claims table, which keeps the table's cells short
SCALE_MARK = "‡"  # in the claims table, a verdict not meaningful at this scale (said under it in words)


def scale_marked(word: str) -> str:
    """A verdict's ``"; not meaningful at this scale"`` as :data:`SCALE_MARK`: the claims table's seven
    columns took 1040 px of the page's 936 with the words in two of them."""
    return word.replace(f"; {NOT_MEANINGFUL}", f"{NBSP}{SCALE_MARK}")


def judged_rows(records: list[dict]) -> dict[str, pd.Series | None]:
    """Each claim's judged row of :func:`claim_rows` (:func:`judged`; None where not run), by claim."""
    rows = claim_rows(records)
    return {c.table: judged(rows[rows["table"] == c.table]) for c in CLAIMS}


def paper_notes(records: list[dict]) -> dict[str, str]:
    """The notes on the paper's cells that :func:`claims_table` marks with :data:`NOTE_MARK`, by claim: which
    row of the paper a cell is, and how its gap is read where the paper states no scale."""
    chosen = judged_rows(records)
    return {t: r["paper_note"] for t, r in chosen.items() if r is not None and r["paper_note"]}


def verdict_reasons(records: list[dict]) -> dict[str, str]:
    """Why each judged claim got its verdict (the paper's comparison), by claim, for the list under the claims
    table: "holds: MAE better, as in the paper; the 95% interval excludes 0; ..."."""
    chosen = judged_rows(records)
    return {t: f"{r['verdict']}: {r['reason']}" for t, r in chosen.items() if r is not None}


def evidence_table(records: list[dict]) -> pd.DataFrame:
    """Every claim at every profile that has runs: seeds, the gap with its interval, the gaps' standard
    deviation, the three p values (one column), the power at the paper's gap with the seeds that would give
    80% power (one column), the version that made the seeds (marked where it is older than this book's
    code) and the verdict."""
    from .viz import sig

    rows = claim_rows(records)
    rows = rows[rows["n"] > 0]
    return pd.DataFrame({
        "table": rows["table"], "profile": rows["profile"], "gap [95% CI] (n)": rows.apply(_gap_text, axis=1),
        "sd of the gaps": rows["sd"].map(lambda v: "–" if np.isnan(v) else sig(v)),
        # the p values in one column, as in the claims table, and the power with the seeds it asks: the table
        # keeps to the text width (eleven columns made it 912 px wide in 688, its caption cut)
        "p: t / Holm / sign-flip": [_p_cells(r) for _, r in rows.iterrows()],
        f"power at the paper's gap (seeds for {stats.TARGET_POWER:.0%})": [
            _power_text(power, need) for power, need in zip(rows["power"], rows["seeds_for_power"])],
        "version": [f"{c} (older)" if not cur else c for c, cur in zip(rows["code"], rows["current"])],
        "verdict": rows["verdict"]}).set_index(["table", "profile"]).rename_axis([PAPERS, "profile"])


def _same_group(a: dict, b: dict | None) -> bool:
    return b is not None and (a["code"], a["setting"]) == (b["code"], b["setting"])


def _budget_rows(records: list[dict]) -> pd.DataFrame:
    rows = claim_rows(records)
    return rows[rows["matched_gap"].notna() & (rows["n"] > 0)]


def budget_table(records: list[dict]) -> pd.DataFrame:
    """Both declared comparisons of the claims whose chapter trains a budget-matched scratch arm, per claim
    and profile: the paper's (the verdict's: scratch trained for the MAE arm's supervised epochs) and the
    compute comparison (scratch given the MAE arm's pretraining and fine-tuning compute: its FLOPs, or its
    passes in runs made before FLOPs were counted), each gap with its interval, the compute comparison's
    own verdict in a word or two (:func:`compute_word`; :func:`compute_reasons` gives why, under the table),
    and each arm's training FLOPs and supervised epochs."""
    rows = _budget_rows(records)
    return pd.DataFrame({"table": rows["table"], "profile": rows["profile"],
                         "the paper's comparison [95% CI] (n)": rows.apply(_gap_text, axis=1),
                         "at the MAE arm's compute [95% CI] (n)": rows["matched_gap"].map(_gap_text),
                         "its verdict": [compute_word(r) for _, r in rows.iterrows()],
                         ARM_BUDGETS: rows["budget"].map(_budget_text)},
                        columns=["table", "profile", "the paper's comparison [95% CI] (n)",
                                 "at the MAE arm's compute [95% CI] (n)", "its verdict", ARM_BUDGETS])


ARM_BUDGETS = "FLOPs (epochs): MAE / scratch / matched"


def compute_reasons(records: list[dict]) -> dict[str, str]:
    """Why each row of :func:`budget_table` got its compute verdict, with its caveats, by "Table 3 (quick)",
    for the list under that table: "MAE worse: the 95% interval excludes 0; a different dataset ...", and
    where the budget-matched arm trains as many epochs as scratch, that its comparison is the paper's."""
    def same(budget) -> str:
        epochs = [(budget or {}).get(k, {}).get("supervised passes") for k in ("baseline", "baseline_matched")]
        return ("; the budget-matched arm trains as many epochs as scratch (its FLOPs come nearest the MAE "
                "arm's there), so this comparison is the paper's" if None not in epochs and epochs[0] == epochs[1] else "")

    return {f"{r['table']} ({r['profile']})": f"{r['matched_verdict'][0]}: {r['matched_verdict'][1]}{r['matched_notes']}"
            + same(r["budget"]) for _, r in _budget_rows(records).iterrows()}


def _budget_text(budget: dict) -> str:
    """``3.4e+15 (5) / 2.4e+15 (5) / 3.5e+15 (11)``: each arm's training FLOPs and supervised epochs, or what
    the runs of older code matched where they counted no FLOPs."""
    if not budget:
        return "not counted (older runs: matched in passes)"
    cells = []
    for key in ("mae", "baseline", "baseline_matched"):
        b = budget.get(key)
        flops = _unbroken(f"{b['training FLOPs']:.2g}") if b else "–"
        cells.append(f"{flops}{NBSP}({int(b['supervised passes'])})" if b else flops)
    return " / ".join(cells)


def short_setting(setting: str) -> str:
    """A setting (:func:`maelib.tuning.setting`'s text) as the tables name it: six hex digits of its hash."""
    return hashlib.sha1(setting.encode()).hexdigest()[:6]


def image_reruns(records: list[dict], current: str) -> tuple[int, pd.DataFrame]:
    """The image chapter's recorded runs for the masking page: how many there are (a seed rerun at the same
    code and setting counts once, with its newest values, as the summary counts it), and one row per code
    version, setting (:func:`short_setting`, as :func:`history` names it), profile and mask ratio, newest
    first: the seeds counted, the mean fine-tune and linear-probe top-1 (%) and the day of the last run.
    ``current``: this book's version (its first eight digits), marked in the code column."""
    rows = [{"code": (provenance.pool_version(r) or "unknown")[:8], "setting": short_setting(setting(r)),
             "profile": r["profile"], "mask ratio": r["resolved"]["mask_ratio"], "seed": r["seed"],
             "fine-tune top-1 (%)": 100 * r["metrics"]["acc_finetune"],
             "linear probe top-1 (%)": 100 * r["metrics"]["acc_probe"], "finished": r["finished"]}
            for r in records if "acc_finetune" in r.get("metrics", {})]
    columns = ["code", "setting", "profile", "mask ratio", "seeds", "fine-tune top-1 (%)", "linear probe top-1 (%)",
               "last run"]
    if not rows:
        return 0, pd.DataFrame(columns=columns)
    runs = pd.DataFrame(rows).sort_values("finished").drop_duplicates(["code", "setting", "profile", "seed"], keep="last")
    table = runs.groupby(["code", "setting", "profile", "mask ratio"], sort=False).agg(
        seeds=("seed", "count"), **{c: (c, "mean") for c in ("fine-tune top-1 (%)", "linear probe top-1 (%)")},
        last=("finished", "max")).reset_index().sort_values(["last", "profile", "mask ratio"], ascending=[False, True, True])
    table["code"] = [c + (" (this book's)" if c == current else "") for c in table["code"]]
    table["mask ratio"] = table["mask ratio"].map("{:.2f}".format)  # as in the page's table of losses
    table["last run"] = table.pop("last").str[:10]
    return len(runs), table[columns].reset_index(drop=True)


def history(records: list[dict]) -> pd.DataFrame:
    """Every protocol iteration a claim went through: per claim, profile and version (newest first), the
    date of its last seed, n, the paired gap of the paper's comparison with its interval, whether it is
    this book's version, and whether it is the group judged. Consecutive versions whose seeds hold the same
    values (a code change that moved no number) share one row, which names the newest and counts the
    others."""
    out = []
    for c in CLAIMS:
        for prof in ("quick", "full"):
            found = groups(records, c.chapter, prof, c.key)
            judged_one = judged_group(records, c.chapter, prof, c.key)
            sts = [summary.paper_comparison(c, g) for g in found]
            exponent = any(_needs_exponent(st) for st in sts)  # one notation down a claim's rows
            previous = None
            for g, st in zip(found, sts):
                same = sorted((seed, v["mae"], v["baseline"]) for seed, v in g["seeds"].items())  # to the bit
                if previous is not None and previous[0] == same:  # a code change that moved no number: one row
                    row = previous[1]
                    row["versions"] += 1
                    row["version"] = f"{row['version'].split(' ')[0]} and {row['versions'] - 1} older, same values"
                    row["judged"] = row["judged"] or ("yes" if _same_group(g, judged_one) else "")
                    continue
                row = {"table": c.table, "profile": prof, "version": (g["code"] or "")[:8], "versions": 1,
                       "setting": short_setting(g["setting"]),
                       "last seed": g["finished"][:10], "gap [95% CI] (n)": _gap_text(st, exponent),
                       "this book's code": "yes" if g["code"] == provenance.version(c.chapter) else "no",
                       "judged": "yes" if _same_group(g, judged_one) else ""}
                out.append(row)
                previous = (same, row)
    columns = ["table", "profile", "version", "setting", "last seed", "gap [95% CI] (n)", "this book's code",
               "judged"]
    return pd.DataFrame(out, columns=columns)  # "versions" was the count behind the version's words


PAPER_CLASSES = 200  # TinyImageNet's classes, all of which the paper's Table 1 uses
DATASET_NAMES = {"tinyimagenet": "TinyImageNet", "camvid": "CamVid", "ade20k": "ADE20K", "btcv": "BTCV",
                 "hippocampus": "MSD Task04 Hippocampus", "housing": "California housing",
                 "ETTh1 (multivariate)": "multivariate ETTh1"}  # as a reader knows them


def scale_table(records: list[dict]) -> pd.DataFrame:
    """The scale of every verdict: per claim, the profile judged, the data (and whether they stand in for
    the paper's), the model's width and depth, and the version, from the group judged."""
    rows = claim_rows(records)
    out = []
    for c in CLAIMS:
        chosen = judged(rows[rows["table"] == c.table])
        g = judged_group(records, c.chapter, chosen["profile"], c.key) if chosen is not None else None
        if g is None:
            out.append({"table": c.table, "profile": "not run", "data": "", "model": "", "version": ""})
            continue
        resolved = json.loads(g["setting"])
        data = DATASET_NAMES.get(g["dataset"], g["dataset"])
        if g["dataset"] != c.paper_dataset:
            data += f" (a stand-in for the paper's {DATASET_NAMES.get(c.paper_dataset, c.paper_dataset)})"
        if c.chapter == "images" and resolved.get("n_classes", PAPER_CLASSES) < PAPER_CLASSES:
            data += f", {resolved['n_classes']} of its {PAPER_CLASSES} classes (the paper: all {PAPER_CLASSES})"
        width, depth = (resolved.get(k) if isinstance(k, str) else k for k in c.model)  # an int: fixed by the net
        model = f"width {width}" + (f", depth {depth}" if depth else "") if width else "as the chapter states"
        out.append({"table": c.table, "profile": chosen["profile"], "data": data, "model": model,
                    "version": chosen["code"] + ("" if chosen["current"] else " (older)")})
    return pd.DataFrame(out).set_index("table").rename_axis(PAPERS)


def recorded_runs(chapter: str, profile: str = "full", root=None) -> pd.DataFrame:
    """The registry's default-parameter runs of ``chapter`` at ``profile`` that hold claim values, one
    row per seed: date, code, device, seed, wall time and the two arms' values."""
    claim = next(c for c in CLAIMS if c.chapter == chapter)
    rows = []
    for r in summary.load(root):
        if r["chapter"] != chapter or r["profile"] != profile or not provenance.is_default(r):
            continue
        for v in seed_values(r):
            rows.append({"finished": r["finished"][:16].replace("T", " "), "code": (provenance.pool_version(r) or "")[:8],
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


SHORT_CLAIMS = {  # each claim as a reader says it, for the table read first
    "Table 1": "MAE pretraining helps image classification",
    "Table 2": "masking the input hurts forecasting",
    "Table 3": "MAE initialisation helps 2D segmentation",
    "Table 4": "MAE initialisation helps 3D segmentation",
    "Table 5": "an MAE imputes worse than a feed-forward net",
    "PatchTST, H = 96": "masked pretraining helps long forecasts",
}
NOT_MEANINGFUL = "not meaningful at this scale"  # what _notes says of a verdict whose MAE or arms failed a check


def short_verdict(row) -> str:
    """A verdict in a word or two for the table read first: the verdict, "(smaller than the paper's)" or
    "(larger ...)" where it holds in direction with the paper's magnitude ruled out on that side, and the
    marks of a failed check and of older code."""
    if row is None:
        return "not run"
    word = row["verdict"].split(" (")[0] if row["verdict"].startswith("inconclusive") else row["verdict"]
    if "magnitude" in row["reason"] and row["verdict"] == "holds":  # the interval lies on one side of its gap
        beyond = min(abs(row["lo"]), abs(row["hi"])) > abs(row["paper_gap"])
        word += f" ({'larger' if beyond else 'smaller'} than the paper's)"
    if NOT_MEANINGFUL in row["reason"]:
        word += f"; {NOT_MEANINGFUL}"
    if not row["current"]:
        word += "; older code"
    return word


def tokens_of(c: Claim, resolved: dict) -> str | None:
    """A claim's tokens per sample and how many of them its MAE sees (:func:`maelib.summary.tokens`): "64 tokens
    (16 seen)", a range where validation chooses among mask ratios; None for tables."""
    got = summary.tokens(c, resolved)
    if got is None:
        return None
    n, seen = got
    return f"{n} tokens ({seen[0]}{f'-{seen[-1]}' if len(seen) > 1 else ''} seen)"


EPOCHS_OF = {"images": "finetune_epochs", "series": "epochs", "segmentation": "epochs", "volumes": "epochs",
             "tabular": "epochs"}  # each chapter's supervised epochs


def glance_table(records: list[dict]) -> pd.DataFrame:
    """The table a reader reads first, one line per claim: the claim in words, the verdict of the paper's
    comparison and of the compute comparison in a word or two, and the scale (profile and seeds, data,
    tokens per sample with those the MAE sees, supervised epochs; each arm's FLOPs are in
    :func:`budget_table`, and would make this table too wide for the page)."""
    rows = claim_rows(records)
    out = []
    for c in CLAIMS:
        r = judged(rows[rows["table"] == c.table])
        g = judged_group(records, c.chapter, r["profile"], c.key) if r is not None else None
        scale = "not run"
        if g is not None:
            resolved = json.loads(g["setting"])
            data = DATASET_NAMES.get(g["dataset"], g["dataset"]) + ("" if g["dataset"] == c.paper_dataset
                                                                   else " (stand-in)")
            tokens = tokens_of(c, resolved)
            epochs = resolved.get("long_epochs" if c.key == "claim_long" else EPOCHS_OF[c.chapter])
            parts = [f"{r['profile']}, {int(r['n'])} seeds", data, tokens, f"{epochs} epochs" if epochs else None]
            scale = "; ".join(x for x in parts if x)
        compute = compute_word(r) or "–"
        out.append({"claim": f"{c.table}: {SHORT_CLAIMS.get(c.table, c.claim)}",
                    "the paper's comparison": short_verdict(r), "at the MAE arm's compute": compute, "scale": scale})
    return pd.DataFrame(out).set_index("claim")


def checks_table(records: list[dict]) -> pd.DataFrame:
    """The checks that make a verdict meaningful, per claim of its judged group: whether its MAE task has the
    tokens it needs (:func:`maelib.summary.degenerate`), whether the MAE learned (the
    worst seed's held-out loss over the flat predictor's, :func:`maelib.summary.mae_check`; the criterion is
    :data:`maelib.mae.LEARNED`), whether every arm finished (each arm's gain over its last fifth of epochs,
    averaged over the seeds, :func:`maelib.summary.convergence`, against the claim's tolerance), and what the interval covers."""
    from .mae import LEARNED
    from .viz import sig

    rows = claim_rows(records)
    out = []
    for c in CLAIMS:
        r = judged(rows[rows["table"] == c.table])
        if r is None:
            continue
        mae = r["mae_check"]
        answer = "yes" if mae and not mae["failed"] else f"no, {mae['failed']} of {mae['n']} seeds" if mae else ""
        learned_text = f"{answer} (worst {sig(mae['worst'], 2)}; at most {LEARNED})" if mae else "not measured"
        gains = r["convergence"]
        if gains:  # an unfinished arm marks the comparisons it is in (maelib.summary.PAPER_ARMS, COMPUTE_ARMS)
            late = [ARM_SHORT[k] for k, v in gains.items() if v >= c.converged_within]
            finished = (("yes" if not late else f"no ({', '.join(late)})") + ": "
                        + ", ".join(f"{ARM_SHORT[k]} {sig(v, 2)}" for k, v in gains.items())
                        + f" (finished: below {c.converged_within:g})")
        else:
            finished = "best validation epoch kept" if c.chapter == "series" else "not measured"
        g = judged_group(records, c.chapter, r["profile"], c.key)
        task = tokens_of(c, json.loads(g["setting"])) or "a row's cells"
        if c.min_tokens:
            task += f"; {'too few' if summary.degenerate(c, g) else 'enough'} (at least {c.min_tokens})"
        out.append({"claim": c.table, TASK_COLUMN: task, "MAE learned: loss / flat predictor's": learned_text,
                    FINISHED_COLUMN: finished, "interval over": r["over"]})
    return pd.DataFrame(out, columns=["claim", TASK_COLUMN, "MAE learned: loss / flat predictor's", FINISHED_COLUMN,
                                      "interval over"]).set_index("claim").rename_axis(PAPERS)


TASK_COLUMN = "MAE task: tokens a sample (seen)"
FINISHED_COLUMN = "arms finished: each arm's mean gain over its last fifth of epochs"
ARM_SHORT = {"mae": "MAE", "baseline": "scratch", "baseline_matched": "matched"}  # an arm in a cell of few words

FAILED_CHECKS = (("degenerate", "too few tokens"), ("did not learn", "an MAE that did not learn"),
                 ("still improving", "an arm still improving"))  # a reason's words, and the check they fail


def checks_sentence(records: list[dict]) -> str:
    """What :func:`checks_table` says in one sentence: the verdicts that fail a check, and which."""
    failed = {}
    for t, r in judged_rows(records).items():
        why = [name for words, name in FAILED_CHECKS if r is not None and words in r["reason"]]
        if why:
            failed[t] = why
    if not failed:
        return "Every judged verdict passes the checks it was measured on."
    return ("Failing a check: " + "; ".join(f"{t} ({', '.join(why)})" for t, why in failed.items())
            + f". These verdicts are marked \"{NOT_MEANINGFUL}\"; a check \"not measured\" was not recorded by the "
            "runs judged, so it neither passes nor fails them.")


def findings(records: list[dict]) -> str:
    """The findings in three sentences, from the verdicts: which claims hold by the paper's comparison, what
    the compute comparison says, and which verdicts are marked, each with its reasons (:data:`FAILED_CHECKS`,
    older code)."""
    chosen = judged_rows(records)
    by_verdict: dict[str, list[str]] = {}
    for t, r in chosen.items():
        by_verdict.setdefault(r["verdict"].split(" (")[0] if r is not None else "not run", []).append(t)
    told = {"holds": ("holds", "hold"), "does not hold": ("does not hold", "do not hold"),
            "the paper's effect ruled out": ("rules out the paper's effect", "rule out the paper's effect"),
            "inconclusive": ("is inconclusive", "are inconclusive"), "not run": ("was not run", "were not run")}
    first = "; ".join(f"{', '.join(ts)} {told.get(v, (v, v))[len(ts) > 1]}" for v, ts in by_verdict.items())
    compute = {t: compute_word(r).replace(f"; {NOT_MEANINGFUL}", f" ({NOT_MEANINGFUL})")
               for t, r in chosen.items() if compute_word(r)}
    by_word = {}
    for t, w in compute.items():
        by_word.setdefault(w, []).append(t)
    marks = {t: [name for words_, name in FAILED_CHECKS if words_ in r["reason"]]
             + (["seeds of older code"] if not r["current"] else []) for t, r in chosen.items() if r is not None}
    marked = {t: m for t, m in marks.items() if m}
    return (f"By the paper's own comparisons: {first}. "
            f"Given the MAE arm's whole compute instead, scratch training gives: "
            + "; ".join(f"{w} in {', '.join(ts)}" for w, ts in by_word.items()) + ". "
            + ("Marked as not yet meaningful: " + "; ".join(f"{t} ({', '.join(m)})" for t, m in marked.items()) + "."
               if marked else "Every verdict passes the checks of the MAE and of its arms."))
